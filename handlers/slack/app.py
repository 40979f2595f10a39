"""The Bolt app factory: settings and a core in, a configured `App` out (no global App)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.error import URLError

from slack_bolt import App
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.core.service import Core
from config.settings import Settings
from handlers.slack import actions, commands, events
from handlers.slack.deps import SlackDeps
from handlers.slack.work import ContextExecutor, work_pool


class SlackSettingsError(Exception):
    pass


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


def check_slack(settings: Settings, client: WebClient | None = None) -> str:
    """Ask Slack who the token belongs to (auth.test) before serving; a refused token or an
    unreachable API becomes one line naming the setting. Returns the bot's user id."""
    client = client or web_client(settings)
    try:
        answer = client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error") if isinstance(error.response.data, dict) else None
        raise SlackSettingsError(
            f"SLACK_BOT_TOKEN was refused by Slack ({code or error.response.status_code}); "
            "check the bot token of the installed app") from None
    except (URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise SlackSettingsError(
            f"cannot reach Slack at SLACK_API_URL={settings.slack_api_url} ({reason})") from None
    return str(answer.get("user_id") or "")


class _TokenWarningFilter(logging.Filter):
    """Bolt warns that `token` is unused whenever SLACK_BOT_TOKEN is in the environment and a
    client is given, which is how noticebot always builds it: not worth a line at every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_BOLT_LOG = logging.getLogger("handlers.slack.bolt")
_BOLT_LOG.addFilter(_TokenWarningFilter())


def bolt_options(work: ContextExecutor | None = None) -> dict[str, Any]:
    """How noticebot builds its Bolt App (the benchmark's bare app builds it alike). Bolt runs
    each listener in the request's thread and answers once it returns; the listeners ack and
    hand their work to `work` (handlers/slack/work.py), which Bolt also keeps as its executor."""
    return {"process_before_response": True, "token_verification_enabled": False,
            "logger": _BOLT_LOG, "listener_executor": work or work_pool()}


def create_app(settings: Settings, core: Core, *, client: WebClient | None = None,
               verify_token: bool = True) -> App:
    """`verify_token=False` when `check_slack` already ran (once, before gunicorn forks)."""
    require_slack_settings(settings)
    client = client or web_client(settings)
    if verify_token:
        check_slack(settings, client)
    work = work_pool()
    app = App(client=client, signing_secret=settings.slack_signing_secret.get_secret_value(),
              **bolt_options(work))
    deps = SlackDeps(core=core, work=work)
    for module in (commands, actions, events):
        module.register(app, deps)

    return app
