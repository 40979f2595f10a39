"""The Bolt app factory: settings and a core in, a configured `App` out (no global App)."""

from __future__ import annotations

from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.core.service import Core
from config.settings import Settings
from handlers.slack import actions, commands, events


class SlackSettingsError(Exception):
    pass


@dataclass(frozen=True)
class SlackDeps:
    core: Core


def web_client(settings: Settings) -> WebClient:
    client = WebClient(token=settings.slack_bot_token.get_secret_value(),
                       base_url=settings.slack_api_url, timeout=10)
    client.retry_handlers.extend([
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
    ])
    return client


def require_slack_settings(settings: Settings, *, socket_mode: bool = False) -> None:
    missing = [name for name, value in (
        ("SLACK_BOT_TOKEN", settings.slack_bot_token.get_secret_value()),
        ("SLACK_SIGNING_SECRET", settings.slack_signing_secret.get_secret_value()),
        ("SLACK_APP_TOKEN", settings.slack_app_token.get_secret_value() if socket_mode
         else "set"),
    ) if not value]
    if missing:
        raise SlackSettingsError(f"missing setting(s): {', '.join(missing)}; see README "
                                 "'Connect to Slack'")


def create_app(settings: Settings, core: Core, *, client: WebClient | None = None) -> App:
    require_slack_settings(settings)
    client = client or web_client(settings)
    app = App(client=client, signing_secret=settings.slack_signing_secret.get_secret_value(),
              process_before_response=False)
    deps = SlackDeps(core=core)
    for module in (commands, actions, events):
        module.register(app, deps)

    return app
