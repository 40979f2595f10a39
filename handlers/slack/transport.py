"""Slack as a delivery transport: one Slack Web API call per port method, and Slack's answers
turned into `Retry` / `Dead`.

Every new post carries the outbox id in its metadata, so `find` can look for an earlier
attempt in the channel's history (the thread's replies) before the loop posts again.

The client's own retry handlers are removed (see `relay_client`): every retry belongs to the
delivery loop, which looks for the message before posting again when an attempt may have
landed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from datetime import timedelta
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.delivery.people import rendered
from bot.delivery.port import Address, Dead, Pacing, Platform, Posted, Recipient, Retry
from bot.messages import Message, mention
from handlers.slack.blocks import fallback_text, message_blocks

EVENT_TYPE = "noticebot_outbox"
MAX_RETRY_AFTER = timedelta(hours=1)
PACE = 1.0  # seconds between one relay's posts into one Slack conversation (Slack: ~1/s)
HISTORY_PAGE = 200
HISTORY_PAGES = 5  # how far back a possibly-posted message is looked for
# The bot's own token refused: every message waits for an admin to mend it (none is
# dead-lettered for it), and the loop tells the admins if it lasts.
CREDENTIAL_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
})
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived",
    "user_not_found", "cannot_dm_bot", "invalid_blocks", "msg_too_long", "no_text",
    # Also never cured by waiting: configuration, or a message Slack refuses as it is.
    "missing_scope", "invalid_arguments",
    "restricted_action", "team_access_not_granted", "message_not_found", "cant_update_message",
    "edit_window_closed", "invalid_metadata_format", "invalid_metadata_schema",
    "metadata_too_large", "invalid_payload",
})


class SlackTransport:
    """The delivery port over Slack's Web API."""

    platform = Platform.slack
    can_find = True

    def __init__(self, client: WebClient, *, pace: float = PACE) -> None:
        self.api = relay_client(client)
        self.pacing = Pacing(per_conversation=pace)

    def post(self, *, to: Address, message: Message, outbox_id: int,
             people: Mapping[str, Recipient]) -> Posted:
        response = _call(self.api.chat_postMessage, ambiguous=True, channel=to.conversation,
                         thread_ts=to.thread, **_body(message, people),
                         metadata={"event_type": EVENT_TYPE,
                                   "event_payload": {"outbox_id": outbox_id}})
        return Posted(conversation=str(response.get("channel") or to.conversation),
                      ref=str(response["ts"]))

    def update(self, *, posted: Posted, message: Message,
               people: Mapping[str, Recipient]) -> None:
        _call(self.api.chat_update, ambiguous=False, channel=posted.conversation,
              ts=posted.ref, **_body(message, people))

    def open_dm(self, *, recipient: Recipient) -> str:
        response = _call(self.api.conversations_open, ambiguous=False, users=recipient.identity)
        return str(response["channel"]["id"])

    def find(self, *, to: Address, outbox_id: int) -> str | None:
        """The ts of a message carrying this outbox id, among the newest messages of the
        channel (or of the thread)."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page: dict[str, Any] = {"channel": to.conversation, "include_all_metadata": True,
                                    "limit": HISTORY_PAGE, "cursor": cursor}
            if to.thread is None:
                response = _call(self.api.conversations_history, ambiguous=False, **page)
            else:
                response = _call(self.api.conversations_replies, ambiguous=False,
                                 ts=to.thread, **page)
            for message in response.get("messages") or []:
                if _outbox_id(message) == outbox_id:
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or not cursor:
                break
        return None


def _body(message: Message, people: Mapping[str, Recipient]) -> dict[str, Any]:
    """Slack's text and blocks; a mention names the person's Slack id."""
    def slack_id(user_id: str) -> str:
        found = people.get(user_id)
        return mention(found.identity if found is not None else user_id)

    try:
        message = rendered(message, slack_id)
        return {"text": fallback_text(message), "blocks": message_blocks(message)}
    except (KeyError, TypeError, ValueError) as error:
        raise Dead("invalid_payload") from error


def _call(method: Callable[..., SlackResponse], *, ambiguous: bool,
          **kwargs: Any) -> SlackResponse:
    """Call Slack; turn failures into Retry / Dead. `ambiguous`: this call may have taken
    effect if it fails (the loop adds what it knows about earlier attempts)."""
    try:
        return method(**kwargs)
    except SlackApiError as error:
        response = error.response
        data = response.data if isinstance(response.data, dict) else {}
        status = int(response.status_code or 0)
        code = str(data.get("error") or f"http_{status}")
        if status == 429 or code == "ratelimited":
            raise Retry("ratelimited", uncertain=False,
                        delay=_retry_after(response.headers)) from error
        if status >= 500:
            code = f"http_{status}"
        elif code in CREDENTIAL_ERRORS:  # refused before anything was posted
            raise Retry(code, uncertain=False, credentials=True) from error
        elif code in PERMANENT_ERRORS:
            raise Dead(code) from error
        raise Retry(code, uncertain=ambiguous) from error
    except (OSError, HTTPException) as error:
        code = "timeout" if _is_timeout(error) else f"connection_error: {type(error).__name__}"
        raise Retry(code, uncertain=ambiguous) from error


def _outbox_id(message: dict[str, Any]) -> int | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != EVENT_TYPE:
        return None
    value = (metadata.get("event_payload") or {}).get("outbox_id")
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _seconds(value: object) -> float | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        seconds = float(str(value))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _header(headers: Any, name: str) -> object:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == name:
            return value
    return None


def _retry_after(headers: Any) -> timedelta:
    seconds = _seconds(_header(headers, "retry-after"))
    return min(timedelta(seconds=1 if seconds is None else seconds), MAX_RETRY_AFTER)


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, URLError) and isinstance(error.reason, BaseException):
        return _is_timeout(error.reason)
    return isinstance(error, TimeoutError)


def relay_client(client: WebClient) -> WebClient:
    """The given client without any of the SDK's retry handlers: the delivery loop owns every
    retry (R6). A handler retries inside the call, before the loop can look in the channel's
    history: a 5xx from a post Slack had in fact stored was posted twice (ServerError), a
    Retry-After was slept through by a drain thread that could serve other conversations
    (RateLimit). A failed call comes back to the loop, which backs off, and before posting
    again looks for the message by its outbox id when the failed attempt may have landed."""
    relayed = copy.copy(client)
    relayed.retry_handlers = []
    return relayed
