"""One logging setup for every process: JSON lines (or readable text) on one stream, with the
request id, platform, actor and case id of the interaction under way carried in context.

Secrets never reach a log line: the values of every secret setting are masked in whatever is
written (a last line of defence: nothing logs them on purpose), and third-party libraries that
would log request bodies at DEBUG (Slack's SDK, httpx) are held at WARNING, so message content,
and with it subject details, is never logged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy.engine import make_url

from config.settings import LogFormat, Settings

CONTEXT_FIELDS = ("request_id", "platform", "actor", "case_id")
_context: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"noticebot_{name}", default=None) for name in CONTEXT_FIELDS
}
# Libraries whose DEBUG/INFO output carries request bodies or is noise at INFO.
QUIET = ("slack_sdk", "slack_bolt", "httpx", "httpcore", "urllib3", "apscheduler",
         "sqlalchemy", "alembic", "asyncio", "tzlocal", "handlers.slack.bolt")
MASK = "[redacted]"
# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def current() -> dict[str, str]:
    """The context fields set for the code running now."""
    return {name: value for name, var in _context.items() if (value := var.get()) is not None}


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Carry these fields (request_id, platform, actor, case_id) on every log line written
    inside the block, in this thread or in work it hands to a context-copying executor."""
    tokens = [(_context[name], _context[name].set(value)) for name, value in fields.items()
              if value is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, in clear: what the formatters mask."""
    values = [settings.slack_bot_token.get_secret_value(),
              settings.slack_signing_secret.get_secret_value(),
              settings.slack_app_token.get_secret_value(),
              settings.usncb_webhook_secret.get_secret_value(), *settings.vault_keys]
    password = make_url(settings.database_url).password
    if password:
        values.append(str(password))
    # Longest first, so a secret that contains another is masked whole.
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


class _Masking(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        for key, value in record.__dict__.items():
            if (key not in _STANDARD and key not in out and not key.startswith("_")
                    and value is not None):
                out[key] = value
        return out


class JsonFormatter(_Masking):
    """One JSON object per line: ts, level, logger, message, the context fields, any `extra`
    fields, and the exception (type, message, traceback) if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(self.fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            data["exc_type"] = record.exc_info[0].__name__
            data["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return self.mask(json.dumps(data, default=str, ensure_ascii=False))


class TextFormatter(_Masking):
    """`2026-11-23T15:00:00.000Z INFO logger: message  key=value ...` for people."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        extra = " ".join(f"{k}={v}" for k, v in self.fields(record).items())
        line = (f"{stamp[:-3]}Z {record.levelname:7} {record.name}: {record.getMessage()}"
                + (f"  {extra}" if extra else ""))
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return self.mask(line)


class _ContextFilter(logging.Filter):
    """Stamps the context fields onto each record when it is made (in the thread that logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def formatter(settings: Settings, log_format: LogFormat | None = None) -> logging.Formatter:
    chosen = log_format or settings.log_format
    cls = JsonFormatter if chosen is LogFormat.json else TextFormatter
    return cls(secret_values(settings))


class _StdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout / sys.stderr is at the time of each line (test runners
    and daemons swap them), never to a stream closed since."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.std = name

    @property
    def stream(self) -> IO[str]:
        return getattr(sys, self.std)  # type: ignore[no-any-return]

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure_logging(settings: Settings, *, stream: IO[str] | None = None,
                      log_format: LogFormat | None = None,
                      quiet: bool = False) -> logging.Handler:
    """Route every logger to one handler in the configured format and level, on stdout (or
    `stream`: sys.stderr for commands whose output is on stdout). `quiet` (one-shot commands,
    the console): warnings and errors only, unless the level is DEBUG. Idempotent: a second
    call replaces the first's handler."""
    handler: logging.Handler
    if stream is None or stream is sys.stdout:
        handler = _StdHandler("stdout")
    elif stream is sys.stderr:
        handler = _StdHandler("stderr")
    else:
        handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(settings, log_format))
    handler.addFilter(_ContextFilter())
    handler.set_name("noticebot")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "noticebot"]:
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelName(settings.log_level.value)
    if quiet and level > logging.DEBUG:
        level = max(level, logging.WARNING)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return handler
