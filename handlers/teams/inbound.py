"""What noticebot does with each Teams interaction, platform types kept out: the SDK handlers
(handlers/teams/app.py) hand in plain data and turn the `Reply` into a Teams response.

Everything here is synchronous and runs off the event loop (`asyncio.to_thread`). Every
state-changing call goes through the core, which re-checks who may act; a click whose delivery
Teams repeats carries the same key and is acted on once."""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from bot.core.commands import CommandName, answer_is_public, changes_state, parse
from bot.core.identities import PlatformUser
from bot.core.service import Core
from bot.messages import ActionValue, Form, FormId, Outcome, render_mentions
from config.platforms import Platform
from handlers.teams import cards

log = logging.getLogger(__name__)
T = TypeVar("T")

# How a mention of someone not on the roster reads.
SOMEONE = "someone"
FAILED = "That could not be done, and nothing was changed. Please try again."
NOT_ON_ROSTER = "You are not on noticebot's roster (or not active): ask your records officer."
BAD_BUTTON = "That button is not valid any more. Open the case again with `notice show ID`."
BAD_DIALOG = "That form could not be read. Open it again from its button."
PRIVATE_HERE = "The answer is only for the person who typed this: open it here."
OLD_COMMAND_BUTTON = ("This button is from an earlier version. Type the command again: it "
                      "is done as soon as you send it.")
ANSWER_IN_CHAT = "The answer is in your 1:1 chat with noticebot."
NOT_AUTHOR = ("This button answers the person who typed the command. Type it yourself, here "
              "or in your 1:1 chat with noticebot.")
FORMS_KEPT = 500  # open dialogs remembered for re-rendering inline errors (per process)


@dataclass
class Reply:
    """One answer to the user who acted. `dialog`: a card to show (or keep) in a dialog;
    `cards`: cards to post in the conversation; `text`: a short private line."""

    text: str = ""
    dialog: cards.Card | None = None
    title: str = "noticebot"
    cards: list[cards.Card] = field(default_factory=list)


def not_done(reason: str) -> str:
    return f"Not done: {reason}"


def command_text(raw: str, mentions: Mapping[str, str] | None = None, *,
                 addressed: bool = False) -> str | None:
    """`@noticebot notice list` (the mention removed), `notice list` or `/notice list` ->
    "list"; None when the message is not a `notice` command, unless it is `addressed` to the
    bot (every message it gets: a 1:1 chat, or a channel message that mentions it), whose words
    are then the command (`@noticebot list` -> "list"; a bare mention -> "", help). A mention
    of a user, `<at>Dee Designee</at>`, becomes `<@object id>` as `mentions` (mention text ->
    Entra object id) gives it, for the core to resolve; any other mention (the bot's own) is
    removed."""
    text = raw or ""
    for shown, object_id in (mentions or {}).items():
        text = text.replace(shown, f" <@{object_id}> ")
    # Teams may split a mention of a name with a space into one per word, each naming the
    # same person (`<at>Dee</at> <at>Designee</at>`): one person, one mention.
    text = re.sub(r"(<@([^>]+)>)((?:\s|&nbsp;)*<@\2>)+", r"\1", text)
    text = re.sub(r"<at>.*?</at>", " ", text, flags=re.S)
    text = html.unescape(re.sub(r"<(?!@)[^>]+>", " ", text)).strip()
    parts = text.split(None, 1)  # any whitespace: Teams sends &nbsp; after a mention
    if parts and parts[0].lower().removeprefix("/") == "notice":
        return " ".join(parts[1].split()) if len(parts) > 1 else ""
    return " ".join(text.split()) if addressed else None


def _warned(form: Form, confirm: Mapping[str, Any]) -> Form:
    warning = " ".join(str(confirm.get(k) or "") for k in ("title", "text")).strip()
    return replace(form, intro="\n\n".join(p for p in (warning, form.intro) if p))


def delivery_key(kind: str, *parts: object) -> str:
    material = json.dumps([kind, *parts], sort_keys=True, default=str)
    return f"teams-{kind}:{hashlib.sha256(material.encode()).hexdigest()}"


def _is_home(command: str) -> bool:
    """`notice home`: Teams' stand-in for Slack's App Home, answered by the adapter (the core's
    command parser does not know it): the person's own overview, private."""
    return command.strip().lower() == "home"


def _value(data: object) -> ActionValue:
    if not isinstance(data, dict):
        raise ValueError("a button value is a JSON object")
    return ActionValue.from_dict({k: data.get(k) for k in ("action", "case_id", "ref")})


class Interactions:
    def __init__(self, core: Core) -> None:
        self.core = core
        # A dialog's form and how the people it mentions read, by the dialog's nonce.
        self._forms: OrderedDict[str, tuple[Form, cards.Namer]] = OrderedDict()
        self._lock = threading.Lock()

    # --- shared -------------------------------------------------------------------------------

    @staticmethod
    def _names(outcome: Outcome) -> cards.Namer:
        """How the people an outcome mentions read: as the core read them with its answer
        (`Outcome.mention_names`, every mention on the roster), so nothing is read here."""
        names = outcome.mention_names
        return lambda person_id: names.get(person_id, SOMEONE)

    def _actor(self, object_id: str | None, teams_id: str | None, what: str
               ) -> PlatformUser | Reply:
        """Who acts: the Entra object id, which the core resolves to a person inside the
        interaction's own transaction (an id no active person has is refused there and
        recorded). A request without one comes from no user of the tenant."""
        if object_id:
            return PlatformUser(Platform.teams, object_id)
        self._attempt(lambda: self.core.refuse_request(
            actor=PlatformUser(Platform.teams, teams_id or "unknown"),
            action=f"{what}.unknown_user", reason=NOT_ON_ROSTER,
            details={"teams_user": teams_id}))
        return Reply(text=not_done(NOT_ON_ROSTER))

    @staticmethod
    def _attempt(run: Callable[[], T]) -> T | None:
        """A core call's answer; None (logged) if the core failed, having changed nothing."""
        try:
            return run()
        except Exception:
            log.exception("a Teams interaction failed in the core (nothing was changed)")
            return None

    def _remember(self, form: Form, name: cards.Namer) -> str:
        nonce = uuid.uuid4().hex
        with self._lock:
            self._forms[nonce] = (form, name)
            while len(self._forms) > FORMS_KEPT:
                self._forms.popitem(last=False)
        return nonce

    def _form_dialog(self, form: Form, *, origin: Mapping[str, Any], name: cards.Namer
                     ) -> Reply:
        nonce = self._remember(form, name)
        meta = {"nonce": nonce, "form": form.form_id.value, "case_id": form.case_id,
                "ref": form.ref, "origin": dict(origin)}
        return Reply(title=form.title, dialog=cards.form_card(
            form, submit_data={"action": cards.SUBMIT, "nb": meta}, name=name))

    def _shown(self, outcome: Outcome | None, *, origin: Mapping[str, Any],
               in_dialog: bool) -> Reply:
        """An outcome as the actor sees it: a refusal, a form, private messages or "Done"."""
        if outcome is None:
            return Reply(text=FAILED)
        name = self._names(outcome)
        if outcome.refusal:  # it may name people (mentions): by name, as in cards
            return Reply(text=not_done(render_mentions(outcome.refusal, name)))
        if outcome.duplicate:
            return Reply(text="Already done.")
        if outcome.form is not None:
            if in_dialog:
                return self._form_dialog(outcome.form, origin=origin, name=name)
            return Reply(cards=[self.open_button("Open the form", outcome.form.title,
                                                 origin)])
        if not outcome.private:
            return Reply(text="Done.")
        if in_dialog:
            # A dialog is one card: each message's text, then its buttons, which answer in
            # the dialog in turn (`cards.dialog_button`).
            body: list[dict[str, Any]] = []
            for message in outcome.private:
                body += cards.message_body(message, name)
                if message.actions:
                    body.append({"type": "ActionSet", "actions": [
                        cards.dialog_button(action, uuid.uuid4().hex)
                        for action in message.actions]})
            return Reply(title=outcome.private[0].title or "noticebot", dialog=cards.card(body))
        return Reply(cards=[cards.message_card(m, name) for m in outcome.private],
                     text=cards.summary(outcome.private[0], name).split("\n", 1)[0])

    def open_button(self, label: str, text: str, origin: Mapping[str, Any]) -> cards.Card:
        data = {"msteams": {"type": "task/fetch"}, "dialog_id": cards.DIALOG, **origin}
        return cards.card([cards.text_block(text)],
                          [{"type": "Action.Submit", "title": label, "data": data}])

    # --- messages: `notice <command>` ---------------------------------------------------------

    def message(self, *, text: str, object_id: str | None, teams_id: str | None,
                conversation: str, personal: bool,
                mentions: Mapping[str, str] | None = None,
                activity_id: str | None = None) -> Reply | None:
        command = command_text(text, mentions, addressed=True) or ""
        channel = conversation.split(";", 1)[0]
        actor = self._actor(object_id, teams_id, "message")
        if isinstance(actor, Reply):
            return actor
        # Each message is answered once, however often Teams hands it on.
        key = delivery_key("command", actor.id, activity_id) if activity_id else None
        if personal or (answer_is_public(command) and not _is_home(command)):
            # A 1:1 chat, or an answer with nothing private (help, a word that is no command):
            # answered here and now. The key is taken in the same transaction as the answer.
            outcome = self._command(actor, command, channel, key=key)
            if outcome is not None and outcome.duplicate:
                return None  # a re-delivery of the message: answered the first time
            return self._shown(outcome, origin={"command": command}, in_dialog=False)
        word = command.split(" ", 1)[0] or "help"
        if changes_state(command):
            # Done at once, as typed; a channel cannot show the answer to its author alone,
            # so it goes to their 1:1 chat and the channel hears only whether it was done.
            outcome = self._command(actor, command, channel, key=key, answer_by_dm=True)
            if outcome is None:
                return Reply(text=FAILED)
            if outcome.duplicate:
                return None  # a re-delivery of the message: answered the first time
            if outcome.sent_by_dm:
                done = "done" if outcome.ok else "not done"
                return Reply(text=f"notice {word}: {done}. {ANSWER_IN_CHAT}")
            # No 1:1 chat to answer in (someone not on the roster): why not, here.
            said = "done." if outcome.ok else self._shown(outcome, origin={},
                                                          in_dialog=False).text
            return Reply(text=f"notice {word}: {said}")
        # An answer that may be private (a case's details): a button that shows it in a
        # dialog to the person who typed the command (`dialog_open`), posted once.
        if key is not None:
            seen = self._attempt(partial(self.core.first_delivery, key=key))
            if seen is None:
                return Reply(text=FAILED)
            if not seen:
                return None  # a re-delivery of the message: answered the first time
        origin = {"command": command, "by": actor.id, "message": activity_id}
        return Reply(cards=[self.open_button("Open", f"notice {word}: {PRIVATE_HERE}",
                                             origin)])

    def _command(self, actor: PlatformUser, command: str, channel: str, *,
                 key: str | None = None, answer_by_dm: bool = False) -> Outcome | None:
        """`key`: the delivery key of the message that asked, when it is answered once (a
        re-delivery is then `duplicate`); an Open button's dialog answers each press."""
        if _is_home(command):
            return self._attempt(lambda: self.core.home(actor=actor, delivery_key=key))
        return self._attempt(lambda: self.core.command(
            actor=actor, text=command, channel=channel, delivery_key=key,
            answer_by_dm=answer_by_dm))

    # --- Action.Execute clicks ----------------------------------------------------------------

    def click(self, *, data: object, object_id: str | None, teams_id: str | None,
              activity_id: str | None) -> Reply:
        actor = self._actor(object_id, teams_id, "click")
        if isinstance(actor, Reply):
            return actor
        try:
            value = _value(data)
        except (KeyError, TypeError, ValueError) as error:
            return self._unreadable(actor, "click.unreadable", BAD_BUTTON, data, error)
        key = delivery_key("click", actor.id, activity_id) if activity_id else None
        outcome = self._attempt(lambda: self.core.click(actor=actor, value=value,
                                                        delivery_key=key))
        if outcome is not None and outcome.form is not None:
            # Only a card from before an upgrade sends a form's button as Action.Execute.
            return Reply(text=not_done("this button opens a form: use the case's latest card."))
        reply = self._shown(outcome, origin={"value": value.to_dict()}, in_dialog=False)
        if reply.cards:  # an invoke answer is one line: the cards' gist, details stay out
            return Reply(text=reply.text or "Done.")
        return reply

    def _unreadable(self, actor: PlatformUser, action: str, reason: str, data: object,
                    error: Exception) -> Reply:
        recorded = self._attempt(lambda: self.core.refuse_request(
            actor=actor, action=action, reason=reason,
            details={"data": data, "problem": str(error)[:200]}))
        return Reply(text=not_done(reason) if recorded is not None else FAILED)

    # --- dialogs: task/fetch and task/submit --------------------------------------------------

    def dialog_open(self, *, data: object, object_id: str | None, teams_id: str | None,
                    activity_id: str | None, conversation: str) -> Reply:
        """`conversation`: where the dialog was opened, as the signed activity says (never the
        card's data, which the client sends back and could change)."""
        actor = self._actor(object_id, teams_id, "dialog")
        if isinstance(actor, Reply):
            return actor
        if not isinstance(data, dict):
            return self._unreadable(actor, "dialog.unreadable", BAD_DIALOG, data,
                                    ValueError("no data"))
        channel = conversation.split(";", 1)[0]
        if isinstance(data.get("command"), str):
            command = str(data["command"])[:500]
            if changes_state(command):
                # Done as typed since; such a button (an older card, or a forged one) would
                # act for whoever presses it, as often as pressed.
                return self._unreadable(actor, "command.old_button", OLD_COMMAND_BUTTON, data,
                                        ValueError("a command that changes something"))
            author = data.get("by")
            if isinstance(author, str) and author.lower() != actor.id.lower():
                # Run as the presser, another's `notice delegate ...` would delegate the
                # presser's authority: the button is its author's (the core still checks).
                return self._unreadable(actor, "command.not_author", NOT_AUTHOR, data,
                                        ValueError("pressed by another"))
            return self._shown(self._command(actor, command, channel),
                               origin={"command": command}, in_dialog=True)
        key = delivery_key("fetch", actor.id, activity_id) if activity_id else None
        return self._press(actor, data, key)

    def _press(self, actor: PlatformUser, data: Mapping[str, Any], key: str | None) -> Reply:
        """A button whose answer shows in a dialog (a card's that opens one, or one inside a
        dialog): `data` carries its click and any confirmation; `key` keys the click."""
        try:
            value = _value(data.get("value"))
        except (KeyError, TypeError, ValueError) as error:
            return self._unreadable(actor, "click.unreadable", BAD_BUTTON, data, error)
        confirm = data.get("confirm")
        if isinstance(confirm, dict) and value.action.value not in FormId.__members__:
            # Asked first: someone who may not act is told so (and it is recorded) before
            # any "Are you sure?".
            checked = self._attempt(lambda: self.core.preview(actor=actor, value=value))
            if checked is None or checked.refusal:
                return self._shown(checked, origin={}, in_dialog=True)
            return self._confirm(value, confirm)
        outcome = self._attempt(lambda: self.core.click(actor=actor, value=value,
                                                        delivery_key=key))
        if outcome is not None and outcome.form is not None and isinstance(confirm, dict):
            # A form that closes something for good: its button's warning heads the form,
            # where Slack shows it before opening the form.
            outcome.form = _warned(outcome.form, confirm)
        return self._shown(outcome, origin={"value": value.to_dict()}, in_dialog=True)

    def _confirm(self, value: ActionValue, confirm: Mapping[str, Any]) -> Reply:
        """Teams cards have no confirmation prompt: a destructive button asks in a dialog,
        and acts only on its submit (once per dialog: the nonce is the click's key)."""
        title = str(confirm.get("title") or "Are you sure?")[:100]
        data = {"action": cards.CONFIRM, "nb": {"nonce": uuid.uuid4().hex,
                                                "value": value.to_dict()}}
        return Reply(title=title, dialog=cards.card(
            [cards.text_block(title, weight="Bolder"),
             cards.text_block(str(confirm.get("text") or ""))],
            [{"type": "Action.Submit", "title": str(confirm.get("confirm") or "Confirm")[:40],
              "style": "positive", "data": data}]))

    def dialog_submit(self, *, data: object, object_id: str | None, teams_id: str | None,
                      conversation: str) -> Reply:
        actor = self._actor(object_id, teams_id, "form")
        if isinstance(actor, Reply):
            return actor
        meta = data.get("nb") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(meta, dict) \
                or not isinstance(meta.get("nonce"), str):
            return self._unreadable(actor, "form.unreadable", BAD_DIALOG, data,
                                    ValueError("no dialog metadata"))
        nonce = str(meta["nonce"])[:64]
        if data.get("action") == cards.PRESS:
            return self._press(actor, meta, delivery_key("press", actor.id, nonce))
        if data.get("action") == cards.CONFIRM:
            try:
                value = _value(meta.get("value"))
            except (KeyError, TypeError, ValueError) as error:
                return self._unreadable(actor, "click.unreadable", BAD_BUTTON, data, error)
            outcome = self._attempt(lambda: self.core.click(
                actor=actor, value=value, delivery_key=delivery_key("confirm", actor.id, nonce)))
            reply = self._shown(outcome, origin={}, in_dialog=True)
            return Reply(text=reply.text) if reply.dialog is None else reply
        try:
            form_id = FormId(str(meta.get("form")))
            case_id, ref = meta.get("case_id"), meta.get("ref")
            channel = conversation.split(";", 1)[0]  # the signed activity's, as for Slack
            if (case_id is not None and not isinstance(case_id, str)) or \
                    (ref is not None and type(ref) is not int):
                raise ValueError("the form's metadata is damaged")
            form, name = self._form(nonce, actor, form_id, meta, channel)
            values = cards.read_values(form, data)
        except (KeyError, TypeError, ValueError) as error:
            return self._unreadable(actor, "form.unreadable", BAD_DIALOG, data, error)
        outcome = self._attempt(lambda: self.core.submit(
            actor=actor, form=form_id, values=values, case_id=case_id, ref=ref, channel=channel,
            # The nonce comes back from the client: bound to the actor, another user's
            # nonce cannot reach the case it opened.
            submission_key=delivery_key("dialog", actor.id, nonce),
            delivery_key=delivery_key("submit", actor.id, nonce, values)))
        if outcome is not None and outcome.errors and not outcome.duplicate:
            return Reply(title=form.title, dialog=cards.form_card(
                form, submit_data={"action": cards.SUBMIT, "nb": meta}, name=name,
                values=values, errors=outcome.errors))
        return self._shown(outcome, origin={}, in_dialog=False)

    def _form(self, nonce: str, actor: PlatformUser, form_id: FormId, meta: Mapping[str, Any],
              channel: str) -> tuple[Form, cards.Namer]:
        """The form a dialog showed and how the people it mentions read: remembered, or
        (another process served it) asked again of the core the way it was first opened."""
        with self._lock:
            known = self._forms.get(nonce)
        if known is not None and known[0].form_id is form_id:
            return known
        found = meta.get("origin")
        origin: dict[str, Any] = found if isinstance(found, dict) else {}
        # Asked again without acting: only `notice open` and a form's button give a form.
        if isinstance(origin.get("command"), str):
            if parse(str(origin["command"])).name is not CommandName.open:
                raise ValueError("not a command that opens a form")
            outcome = self._command(actor, str(origin["command"]), channel)
        else:
            value = _value(origin.get("value"))
            outcome = self._attempt(lambda: self.core.preview(actor=actor, value=value))
        if outcome is None or outcome.form is None or outcome.form.form_id is not form_id:
            raise ValueError("the form cannot be shown again")
        return outcome.form, self._names(outcome)
