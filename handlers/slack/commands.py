"""`/notice` slash command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers.slack.people import acting
from handlers.slack.render import attempt, show

if TYPE_CHECKING:
    from handlers.slack.deps import SlackDeps


def register(app: App, deps: SlackDeps) -> None:
    @app.command("/notice")
    def notice(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()

        def work() -> None:
            user = command["user_id"]  # its shape was checked before Bolt saw the request

            def tell(text: str) -> None:
                respond(text=text, response_type="ephemeral", replace_original=False)

            outcome = attempt(lambda: deps.core.command(
                actor=acting(user), text=command.get("text") or "",
                channel=command.get("channel_id") or ""),
                what="/notice", tell=tell)
            if outcome is None:
                return
            show(outcome, deps, client=client, user=user,
                 channel=command.get("channel_id"), trigger_id=command.get("trigger_id"),
                 respond=respond)

        deps.work.submit(work)
