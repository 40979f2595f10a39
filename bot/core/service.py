"""`Core`: the one entry point adapters call. Three verbs, one per kind of interaction:

- `command(actor=, text=, channel=)`: a `/notice ...` command;
- `click(actor=, value=)`: a button the core offered earlier;
- `submit(actor=, form=, values=, ...)`: a filled form.

Each runs in one transaction: the inbound interaction is recorded and the step runs. A refusal
or bad input undoes what the step changed (a savepoint) and records, in the same transaction,
the attempt and why it was not done.
Outgoing messages go to the outbox in the same transaction; `Outcome.private` is for the actor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.core import access, commands, inbound, queries, thread, workflow
from bot.core.buttons import titled
from bot.core.context import Ctx, unit_of_work
from bot.core.details import open_case_details
from bot.core.errors import FormErrors, Refused
from bot.core.forms import open_case_form, validate
from bot.core.identities import (
    Actor,
    PlatformUser,
    given_id,
    mention_ids,
    names_of,
    reachable,
)
from bot.core.steps import callback, opening, review
from bot.core.transitions import load_case
from bot.messages import (
    ActionId,
    ActionValue,
    DestinationKind,
    Form,
    FormId,
    Mark,
    Message,
    Outcome,
    RefusalCode,
    mentioned_by,
)
from bot.ops import metrics
from bot.ops.logs import log_context
from bot.usncb.delivery import deliver_pending
from bot.usncb.requests import request_text
from bot.usncb.webhook import WebhookSender
from config.platforms import NAMES_PEOPLE
from config.settings import Settings, UsncbChannelKind
from storage import deliveries
from storage.db import transaction
from storage.models import (
    Case,
    Person,
    ProcessedDelivery,
    RequestKind,
    UsncbCallbackSeen,
    UsncbRequest,
)

# Slack re-delivers within minutes; a day of keys covers every retry with a wide margin.
DELIVERY_KEYS_KEPT = timedelta(days=1)
BAD_INPUT = RefusalCode.bad_input  # input the core cannot use at all

log = logging.getLogger(__name__)

class Core:
    def __init__(self, *, engine: Engine, settings: Settings, clock: Clock,
                 usncb_sender: WebhookSender | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.usncb_sender = usncb_sender

    # --- the three verbs -------------------------------------------------------------------

    def command(self, *, actor: Actor, text: str, channel: str = "console",
                delivery_key: str | None = None, answer_by_dm: bool = False) -> Outcome:
        """`delivery_key`: the platform's request, for a command acted on at most once (a
        re-delivery of the same key changes nothing and returns `duplicate`).
        `answer_by_dm`: the answer (or why not) is also sent to the actor's direct messages,
        in the same transaction, where the platform cannot answer only them where they typed
        (a Teams channel)."""
        parsed = commands.parse(text)
        return self._run(
            actor, "command", f"command.{parsed.name}", {"text": text, "channel": channel},
            lambda ctx: commands.run(ctx, parsed, channel=channel),
            case_id=parsed.case_id, delivery_key=delivery_key, answer_by_dm=answer_by_dm,
        )

    def usncb_answer(self, *, body: dict[str, Any], signature: str) -> Outcome:
        """An answer from the USNCB liaison system, already authenticated by its signature.
        A repeated answer for the same request is acknowledged (`already_recorded`) and
        changes nothing."""
        def handle(ctx: Ctx) -> Outcome:
            ctx.session.add(UsncbCallbackSeen(signature=signature, received_at=ctx.now))
            case, recorded = callback.callback_answer(ctx, body)
            thread.sync(ctx, case)
            return Outcome(case_id=case.id, already_recorded=not recorded)

        return self._run(callback.USNCB_ACTOR, "callback", "usncb.callback",
                         {"body": _jsonable(body)}, handle, case_id=None)

    def act(self, *, actor: str, action: str, handler: Callable[[Ctx], Outcome],
            case_id: str | None = None, **payload: Any) -> Outcome:
        """Run an administrative action (records, CLI) through the same recorded unit of work
        as chat interactions: the attempt, any refusal and every change are on the record.
        From the command line, the actor must be bound to the account running it, if the
        deployment binds them (`access.require_bound_operator`)."""
        def bound(ctx: Ctx) -> Outcome:
            access.require_bound_operator(ctx)
            return handler(ctx)

        return self._run(actor, "admin", action, payload, bound, case_id=case_id)

    def callback_seen(self, signature: str) -> bool:
        """Whether a USNCB callback with this signature was accepted before (a replay)."""
        with Session(self.engine) as session:
            return session.get(UsncbCallbackSeen, signature) is not None

    def deliver_usncb(self) -> int:
        """Send queued webhook requests (no-op in manual mode); adapters call it after acking."""
        if self.usncb_sender is None:
            return 0
        return deliver_pending(engine=self.engine, clock=self.clock, settings=self.settings,
                               sender=self.usncb_sender)

    def home(self, *, actor: Actor, delivery_key: str | None = None) -> Outcome:
        """The actor's overview (App Home); the view itself is recorded as a read.
        `delivery_key`: the request that asked, answered once (as for `command`)."""
        return self._run(actor, "event", "event.home_opened", {},
                         lambda ctx: commands.home(ctx), case_id=None,
                         delivery_key=delivery_key)

    def case_thread(self, *, actor: Actor, case_id: str) -> Outcome:
        """A case's root and thread messages as they stand, with the current step's buttons:
        what a surface shows for a case it has not seen since it started. A recorded read."""
        def handle(ctx: Ctx) -> Outcome:
            access.require_person(ctx.session, ctx.actor)
            case = load_case(ctx, case_id, lock=False)
            ctx.record("read", "thread.viewed", case_id=case.id)
            return Outcome(case_id=case.id,
                           private=[thread.root_message(case), *thread.step_messages(ctx, case)])

        return self._run(actor, "command", "command.thread", {"case": case_id}, handle,
                         case_id=None)

    def preview(self, *, actor: Actor, value: ActionValue) -> Outcome:
        """What pressing a button would lead to, without doing it: who may is checked as on
        the click (a refusal is recorded like any other), and the button's form is returned
        if it opens one. For a confirmation asked before acting, and for a form asked for again
        (its dialog was shown by another process, or before a restart). A recorded read."""
        def handle(ctx: Ctx) -> Outcome:
            case = load_case(ctx, value.case_id, lock=False)
            act = workflow.act_for_action(value.action)
            if act is None:
                raise Refused(f"'{value.action.value}' is not a step of a case.",
                              code=RefusalCode.usage)
            workflow.may(ctx, case, act)
            ctx.record("read", "button.previewed", case_id=case.id, button=value.action.value)
            form = self._form_for(ctx, case, act.form, value.ref) if act.form else None
            return Outcome(form=form, case_id=case.id)

        return self._run(actor, "click", f"click.{value.action.value}.preview",
                         value.to_dict(), handle, case_id=value.case_id)

    def click(self, *, actor: Actor, value: ActionValue, delivery_key: str | None = None
              ) -> Outcome:
        """`delivery_key` identifies the platform's delivery of this click (a re-delivery of
        the same key changes nothing and returns `duplicate`)."""
        def handle(ctx: Ctx) -> Outcome:
            if value.action is ActionId.show_case:
                shown = commands.show_case(ctx, value.case_id)
                self._nothing_done(ctx, delivery_key)
                return shown
            case = load_case(ctx, value.case_id)
            act = workflow.act_for_action(value.action)
            if act is None:
                raise Refused(f"'{value.action.value}' is not a step of a case.",
                              code=RefusalCode.usage)
            if act.form is not None:
                workflow.may(ctx, case, act)
                form = self._form_for(ctx, case, act.form, value.ref)
                if form.fields:
                    self._nothing_done(ctx, delivery_key)
                    return Outcome(form=form, case_id=case.id)
            # No form, or nothing to ask (a webhook request with no options): act on the click.
            workflow.perform(ctx, case, act, {}, value.ref)
            thread.sync(ctx, case)
            return Outcome(case_id=case.id)

        return self._run(actor, "click", f"click.{value.action.value}", value.to_dict(), handle,
                         case_id=value.case_id, delivery_key=delivery_key)

    def submit(
        self,
        *,
        actor: Actor,
        form: FormId,
        values: Mapping[str, object],
        case_id: str | None = None,
        ref: int | None = None,
        channel: str = "console",
        submission_key: str | None = None,
        delivery_key: str | None = None,
    ) -> Outcome:
        """`submission_key` names the form instance (one case per open-case form);
        `delivery_key` the platform's delivery of this submission (acted on once)."""
        def handle(ctx: Ctx) -> Outcome:
            if form is FormId.open_case:
                clean = validate(open_case_form(), values, today=ctx.today)
                case = opening.open_case(ctx, clean, origin_channel=channel,
                                       submission_key=submission_key)
                thread.sync(ctx, case)
                return Outcome(case_id=case.id, private=[Message(
                    title=f"Case {case.id} opened",
                    text=f"Your case {case.id} is open. Follow the checklist in its thread.",
                )])
            case = load_case(ctx, case_id)
            act = workflow.act_for_form(form)
            if act is None:
                raise Refused(f"'{form.value}' is not a form of a case.", code=RefusalCode.usage)
            workflow.may(ctx, case, act)  # who may, before what they typed
            review.screen(ctx, case, values)
            clean = validate(self._form_for(ctx, case, form, ref), values, today=ctx.today,
                             min_chars=self.settings.justification_min_chars,
                             min_words=self.settings.justification_min_words)
            workflow.perform(ctx, case, act, clean, ref)
            thread.sync(ctx, case)
            return Outcome(case_id=case.id)

        payload = {"form": form.value, "values": _jsonable(values), "ref": ref,
                   "channel": channel, "submission_key": submission_key}
        return self._run(actor, "form", f"form.{form.value}", payload, handle, case_id=case_id,
                         delivery_key=delivery_key)

    # --- plumbing ----------------------------------------------------------------------------

    def _form_for(self, ctx: Ctx, case: Case, form: FormId, ref: int | None) -> Form:
        automatic = review.automatic_indicators(ctx, case) if form is FormId.review else ()
        webhook = self.settings.usncb_channel is UsncbChannelKind.webhook
        documents = queries.latest_request(ctx, case.id, RequestKind.documents)
        requested = tuple(documents.details.get("documents") or ()) if documents else ()
        received = (tuple((documents.answer_details or {}).get("received") or ())
                    if documents is not None and documents.answer == "received" else None)
        built = workflow.build_form(form, case, today=ctx.today, ref=ref, automatic=automatic,
                           webhook=webhook, method=_usual_method(ctx),
                           requested=requested, received=received)
        act = workflow.act_for_form(form)
        kind = act.request if act is not None else None
        if kind is None:
            return built
        # The request itself: noticebot sends it (webhook) or the officer copies it (manual).
        reference = open_case_details(ctx.vault, case).notice_reference
        text = request_text(case, kind, {"purpose": case.intended_use},
                            notice_reference=reference)
        lead = ("noticebot will send this request to the USNCB liaison system:" if webhook
                else "Send this to the USNCB through your local procedure, then record it:")
        intro = "\n".join(part for part in (built.intro, lead) if part)
        return replace(built, intro=intro, preformatted=text)

    def _run(
        self,
        actor: Actor,
        kind: str,
        action: str,
        payload: dict[str, Any],
        handler: Callable[[Ctx], Outcome],
        *,
        case_id: str | None,
        delivery_key: str | None = None,
        answer_by_dm: bool = False,
    ) -> Outcome:
        """One interaction, logged (ids only, never what was typed) and counted in metrics."""
        started = time.perf_counter()
        given = given_id(actor)
        actor_issue = inbound.actor_problem(given)
        shown_case = case_id if case_id is None or inbound.case_id_problem(case_id) is None \
            else None
        with log_context(actor=str(given) if actor_issue is None else inbound.INVALID_ACTOR,
                         case_id=shown_case):
            # A delivery racing its twin waits on the twin's key and finds it taken
            # (`deliveries.take`), so no unique-key error needs catching here.
            outcome = self._unit(actor, actor_issue, kind, action, payload, handler,
                                 case_id=case_id, delivery_key=delivery_key,
                                 answer_by_dm=answer_by_dm)
            result = ("duplicate" if outcome.duplicate else "ok" if outcome.ok
                      else "refused" if outcome.refusal else "invalid")
            metrics.interaction(kind, result, outcome.refusal_code)
            log.info("%s %s: %s", kind, action, result, extra={
                "kind": kind, "action": action, "outcome": result,
                "refusal_code": outcome.refusal_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                **({"case_id": outcome.case_id} if outcome.case_id and not shown_case else {})})
        return outcome

    def _unit(
        self,
        actor: Actor,
        actor_issue: str | None,
        kind: str,
        action: str,
        payload: dict[str, Any],
        handler: Callable[[Ctx], Outcome],
        *,
        case_id: str | None,
        delivery_key: str | None,
        answer_by_dm: bool,
    ) -> Outcome:
        # Unusable ids and NUL characters are refused before anything is looked up or stored
        # with them; the attempt is recorded with the offending value shown, not used.
        problem, given = None, {}
        if actor_issue is not None:
            problem = actor_issue
            given["given_actor"] = inbound.shown(given_id(actor))
            actor = inbound.INVALID_ACTOR
        if case_id is not None and (case_issue := inbound.case_id_problem(case_id)) is not None:
            problem = problem or case_issue.capitalize() + "."
            given["given_case_id"] = inbound.shown(case_id)
            case_id = None
        if problem is None and inbound.has_nul(payload):
            problem = "The input contains a NUL character, which cannot be accepted."
        if problem is not None:
            return self._refuse_input(actor, kind, action, payload, problem, given,
                                      case_id=case_id)
        inbound_payload = {k: v for k, v in payload.items() if k != "case_id"}
        with unit_of_work(self.engine, clock=self.clock, settings=self.settings,
                          actor=actor) as ctx:
            if not self._first_delivery(ctx, delivery_key):
                return Outcome(duplicate=True, case_id=case_id)
            ctx.record(kind, action, case_id=case_id, **inbound_payload)
            try:
                with ctx.undone_if_stopped():
                    outcome = handler(ctx)
            except Refused as refused:
                ctx.record("refusal", action, case_id=case_id, reason=refused.reason,
                           code=refused.code)
                outcome = Outcome(ok=False, refusal=refused.reason, refusal_code=refused.code,
                                  case_id=case_id,
                                  private=[Message(title=titled(Mark.refused, "Not done"),
                                                   text=refused.reason, mark=Mark.refused)])
            except FormErrors as invalid:
                ctx.record("refusal", f"{action}.invalid", case_id=case_id,
                           errors=invalid.errors)
                outcome = Outcome(ok=False, errors=invalid.errors, case_id=case_id)
                # The same answers sent again are checked again and shown the same errors.
                self._nothing_done(ctx, delivery_key)
            return self._answer(ctx, actor, outcome, by_dm=answer_by_dm)

    @staticmethod
    def _nothing_done(ctx: Ctx, delivery_key: str | None) -> None:
        """The delivery was answered without anything done (a case or a form to fill shown,
        answers that failed their checks): its key is given back, so the same delivery again
        (an invoke whose answer Teams lost) is looked at again, not answered "Already done."."""
        if delivery_key is not None:
            deliveries.give_back(ctx.session, delivery_key)

    @staticmethod
    def _first_delivery(ctx: Ctx, delivery_key: str | None) -> bool:
        """False when this platform delivery was already acted on (a re-delivery)."""
        return delivery_key is None or deliveries.take(ctx.session, delivery_key, at=ctx.now)

    @staticmethod
    def _answer(ctx: Ctx, actor: Actor, outcome: Outcome, *, by_dm: bool = False) -> Outcome:
        """Records the private replies, or with `by_dm` queues them to the actor's direct
        messages on the platform they came from (recorded as queued), and resolves the mentions
        they carry. Only a person on the roster reachable there gets them so."""
        dm_on = actor.platform if by_dm and isinstance(actor, PlatformUser) else None
        outcome.sent_by_dm = (dm_on is not None and dm_on in ctx.settings.platforms
                              and access.person(ctx.session, ctx.actor) is not None
                              and reachable(ctx.session, dm_on, ctx.actor))
        for message in outcome.private:
            if outcome.sent_by_dm and dm_on is not None:
                ctx.send(DestinationKind.dm, ctx.actor, message, case_id=outcome.case_id,
                         platforms=(dm_on,))
            else:
                ctx.record("outbound", "message.private", case_id=outcome.case_id,
                           to=ctx.actor, message=message.to_dict())
        # Read here, in the answer's transaction, so a surface needs no database of its own to
        # show the answer: the names where it names people, else the ids it renders itself.
        if isinstance(actor, PlatformUser):
            if actor.platform in NAMES_PEOPLE:
                outcome.mention_names = names_of(ctx.session, mentioned_by(outcome))
            elif outcome.private:
                outcome.mention_ids = mention_ids(ctx.session, actor.platform, outcome.private)
        return outcome

    def _refuse_input(self, actor: Actor, kind: str, action: str, payload: dict[str, Any],
                      problem: str, given: dict[str, str], *, case_id: str | None) -> Outcome:
        with unit_of_work(self.engine, clock=self.clock, settings=self.settings,
                          actor=actor) as ctx:
            inbound_payload = {k: v for k, v in payload.items() if k != "case_id"}
            ctx.record(kind, action, case_id=case_id, **inbound_payload, **given)
            ctx.record("refusal", action, case_id=case_id, reason=problem, code=BAD_INPUT)
            told = Message(title="Not done", text=problem)
            ctx.record("outbound", "message.private", case_id=case_id, to=ctx.actor,
                       message=told.to_dict())
        return Outcome(ok=False, refusal=problem, refusal_code=BAD_INPUT, case_id=case_id,
                       private=[told])

    def refuse_request(self, *, actor: object, action: str, reason: str,
                       details: Mapping[str, object]) -> Outcome:
        """A platform request the adapter could not hand on (unreadable, wrong shapes): the
        attempt and its refusal are recorded like any other refusal (R7, R9)."""
        shown = {key: inbound.shown(value) for key, value in details.items()}
        given = given_id(actor)
        name: Actor
        if isinstance(actor, PlatformUser | str) and inbound.actor_problem(given) is None:
            name = actor
        else:
            name = inbound.INVALID_ACTOR
            shown["given_actor"] = inbound.shown(given)
        with unit_of_work(self.engine, clock=self.clock, settings=self.settings,
                          actor=name) as ctx:
            ctx.record("refusal", action, reason=reason, code=BAD_INPUT, **shown)
        # The adapter answers (a 400, or privately with `private`); the refusal is recorded.
        return Outcome(ok=False, refusal=reason, refusal_code=BAD_INPUT,
                       private=[Message(title="Not done", text=reason)])

    def first_delivery(self, *, key: str) -> bool:
        """Takes a platform delivery that the adapter answers without a core verb (a Teams
        channel's Open button for a command that only reads); False when it was taken
        before, so a re-delivered message is not answered twice."""
        with transaction(self.engine) as session:
            return deliveries.take(session, key, at=self.clock.now())

    def forget_deliveries(self, *, older_than: timedelta = DELIVERY_KEYS_KEPT) -> int:
        """Drop delivery keys past the time a platform re-delivers (Slack: minutes). Reads
        first, so a sweep with nothing to drop writes nothing."""
        cutoff = self.clock.now() - older_than
        old = col(ProcessedDelivery.processed_at) < cutoff
        with Session(self.engine) as session:
            if session.exec(select(ProcessedDelivery.key).where(old).limit(1)).first() is None:
                return 0
        with transaction(self.engine) as session:
            result = session.execute(delete(ProcessedDelivery).where(old))
            return int(getattr(result, "rowcount", 0) or 0)

    # --- delivery ----------------------------------------------------------------------------

    def roster(self) -> list[tuple[str, str, list[str], str | None]]:
        """Active people as (user id, name, roles, AOR), for surfaces that list or pick them."""
        with Session(self.engine) as session:
            people = session.exec(select(Person).where(col(Person.active).is_(True))
                                  .order_by(col(Person.user_id))).all()
            return [(p.user_id, p.name, sorted(access.roles_of(session, p.user_id)), p.aor_id)
                    for p in people]

    def display_name(self, user_id: str) -> str:
        with Session(self.engine) as session:
            found = access.person(session, user_id)
            return found.name if found else user_id


def _usual_method(ctx: Ctx) -> str | None:
    """How this officer last sent a USNCB request by hand: the local procedure does not change
    between requests, so it is offered instead of being asked again."""
    return ctx.session.exec(
        select(UsncbRequest.method)
        .where(UsncbRequest.sent_by == ctx.actor,
               UsncbRequest.channel == UsncbChannelKind.manual.value)
        .order_by(col(UsncbRequest.id).desc())
        .limit(1)
    ).first()


def _jsonable(values: Mapping[str, object]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, date):
            out[key] = value.isoformat()
        elif isinstance(value, list | tuple | set | frozenset):
            out[key] = [str(v) for v in value]
        else:
            out[key] = value if value is None or isinstance(value, bool | int) else str(value)
    return out
