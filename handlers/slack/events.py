"""Events: the App Home tab; retried deliveries are acknowledged and dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient

from handlers.slack.blocks import MAX_VIEW_BLOCKS, message_blocks
from handlers.slack.people import acting, slack_mentions
from handlers.slack.render import attempt, say

if TYPE_CHECKING:
    from handlers.slack.deps import SlackDeps


def register(app: App, deps: SlackDeps) -> None:
    @app.middleware
    def drop_event_retries(req: BoltRequest, resp: BoltResponse,
                           next: Callable[[], BoltResponse]) -> BoltResponse:
        # Slack re-sends an event it thinks was not acknowledged in time (X-Slack-Retry-Num);
        # the first delivery is being handled, so a retry must not act twice (R2).
        if req.headers.get("x-slack-retry-num") and req.body.get("type") == "event_callback":
            return BoltResponse(status=200, body="")
        return next()

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        def work() -> None:
            if event.get("tab", "home") != "home":
                return
            user = event["user"]

            def tell(text: str) -> None:
                client.views_publish(user_id=user, view={"type": "home", "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": text}}]})

            outcome = attempt(lambda: deps.core.home(actor=acting(user)), what="App Home",
                              tell=tell)
            if outcome is None:
                return
            blocks: list[dict[str, Any]] = []
            for message in slack_mentions(outcome):
                blocks += message_blocks(message)
                blocks.append({"type": "divider"})
            def publish(_: str) -> None:
                client.views_publish(user_id=user,
                                     view={"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]})

            say(publish, "App Home")

        deps.work.submit(work)  # Bolt acks the event when this returns
