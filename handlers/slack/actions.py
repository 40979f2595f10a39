"""Buttons (block_actions) and modal submissions (view_submission, view_closed).

Each click and each submission is acted on once per Slack delivery: Slack re-sends one it
thinks was not acknowledged (X-Slack-Retry-Num), and the core finds its delivery key (R2)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.messages import ActionValue, FormId
from handlers.slack.blocks import ACTION_PREFIX, notice_view, read_view_state
from handlers.slack.people import acting, slack_refusal
from handlers.slack.render import FAILED, attempt, private, say, show

if TYPE_CHECKING:
    from handlers.slack.deps import SlackDeps

BAD_BUTTON = "That button is not valid any more. Open the case again with `/notice show ID`."


def _channel_of(body: dict[str, Any]) -> str | None:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id")
    return str(channel) if channel else None


def delivery_key(kind: str, *parts: object) -> str:
    """A fixed-length key for one Slack delivery (its parts come from the payload)."""
    material = json.dumps([kind, *parts], sort_keys=True, default=str)
    return f"slack-{kind}:{hashlib.sha256(material.encode()).hexdigest()}"


def click_key(body: dict[str, Any], action: dict[str, Any]) -> str | None:
    """A click is one action_ts (Slack's own id of the click) by one user on one button."""
    stamp = action.get("action_ts") or body.get("trigger_id")
    if not stamp:
        return None
    return delivery_key("click", body["user"]["id"], stamp, action.get("action_id"),
                        action.get("block_id"), action.get("value"))


def view_key(view: dict[str, Any]) -> str | None:
    """A submission is one view (id and hash: the version shown) with the values it carried;
    a corrected resubmission of the same view after inline errors carries other values."""
    if not view.get("id"):
        return None
    return delivery_key("view", view.get("id"), view.get("hash"), view.get("state"))


def register(app: App, deps: SlackDeps) -> None:
    @app.action(re.compile(rf"^{ACTION_PREFIX}:"))
    def button(ack: Ack, body: dict[str, Any], client: WebClient,
               respond: Respond | None = None) -> None:
        ack()

        def work() -> None:
            user = body["user"]["id"]  # its shape was checked before Bolt saw the request
            channel = _channel_of(body)
            reply = respond if body.get("response_url") else None

            def tell(text: str) -> None:
                private(client, [], text, user=user, channel=channel, respond=reply)

            action = body["actions"][0]
            try:
                value = ActionValue.from_dict(json.loads(action["value"]))
            except (KeyError, TypeError, ValueError, RecursionError) as error:
                problem = str(error)[:200]
                # Refused like any other refusal: on the record, and the user is told (R7).
                recorded = attempt(lambda: deps.core.refuse_request(
                    actor=acting(user), action="click.unreadable", reason=BAD_BUTTON,
                    details={"action_id": action.get("action_id"), "value": action.get("value"),
                             "problem": problem}), what="recording an unreadable button",
                    tell=tell)
                if recorded is not None:
                    say(tell, BAD_BUTTON)
                return
            outcome = attempt(lambda: deps.core.click(actor=acting(user), value=value,
                                                      delivery_key=click_key(body, action)),
                              what=f"click {value.action.value}", tell=tell)
            if outcome is None or outcome.duplicate:
                return
            show(outcome, deps, client=client, user=user, channel=channel,
                 trigger_id=body.get("trigger_id"), respond=reply)

        deps.work.submit(work)

    @app.view(f"{ACTION_PREFIX}:form")
    def submit(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        view = body["view"]
        try:
            metadata, values = read_view_state(view)
        except ValueError as error:
            reason = str(error)
            recorded = attempt(lambda: deps.core.refuse_request(
                actor=acting(user), action="form.unreadable", reason=reason,
                details={"view_id": view.get("id")}), what="recording an unreadable form",
                tell=lambda text: None)
            ack(response_action="update",
                view=notice_view("Not done", reason if recorded else FAILED))
            return
        ref = metadata.get("ref")
        outcome = attempt(lambda: deps.core.submit(
            actor=acting(user), form=FormId(metadata["form"]), values=values,
            case_id=metadata.get("case_id"), ref=ref, channel=metadata.get("channel") or "",
            submission_key=f"slack-view:{view.get('id')}" if view.get("id") else None,
            delivery_key=view_key(view),
        ), what="form submission", tell=lambda text: None)
        if outcome is None:
            ack(response_action="update", view=notice_view("Not done", FAILED))
            return
        if outcome.duplicate:
            ack()
            return
        if outcome.errors:
            blocks = view.get("blocks")
            known = {block["block_id"] for block in blocks if isinstance(block, dict)
                     and "block_id" in block} if isinstance(blocks, list) else set()
            errors = {k: v for k, v in outcome.errors.items() if k in known}
            if errors:
                ack(response_action="errors", errors=errors)
                return
            text = "; ".join(f"{k}: {v}" for k, v in outcome.errors.items())
            ack(response_action="update", view=notice_view("Not done", text))
            return
        if outcome.refusal:
            ack(response_action="update", view=notice_view("Not done", slack_refusal(outcome)))
            return
        ack()
        show(outcome, deps, client=client, user=user, channel=metadata.get("channel"),
             trigger_id=None, respond=None)

    @app.view_closed(f"{ACTION_PREFIX}:form")
    def closed(ack: Ack) -> None:
        ack()  # a form cancelled: nothing to do, nothing submitted
