"""Deliver the outbox to Slack: post new messages, update keyed ones in place.

One drainer per process at a time, in outbox order, so a case's root message is posted before
its thread replies. Transient Slack errors leave the row pending for the next drain; permanent
ones dead-letter it. (Multi-replica claiming, back-off and rate pacing come with the outbox
relay of the reminders work.)
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.messages import DestinationKind, Message
from handlers.slack.blocks import fallback_text, message_blocks
from storage.db import transaction
from storage.models import OutboxMessage, OutboxStatus, PlatformMessage

log = logging.getLogger(__name__)
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "invalid_auth", "account_inactive", "is_archived",
    "user_not_found", "cannot_dm_bot", "invalid_blocks", "msg_too_long", "no_text",
})


class NotReady(Exception):
    """The message depends on one not delivered yet (a thread reply before its root)."""


class SlackRelay:
    def __init__(self, *, engine: Engine, client: WebClient, clock: Clock) -> None:
        self.engine = engine
        self.client = client
        self.clock = clock
        self._lock = threading.Lock()

    def drain(self, *, limit: int = 200) -> int:
        """Send pending messages in order; returns how many were delivered."""
        delivered = 0
        with self._lock:
            for _ in range(limit):
                with Session(self.engine) as session:
                    row = session.exec(
                        select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.pending)
                        .order_by(col(OutboxMessage.id)).limit(1)
                    ).first()
                if row is None:
                    break
                try:
                    ref = self._deliver(row)
                except NotReady:
                    break
                except SlackApiError as error:
                    code = str(error.response.get("error", "unknown"))
                    self._failed(row, code, permanent=code in PERMANENT_ERRORS)
                    if code not in PERMANENT_ERRORS:
                        break
                    continue
                self._sent(row, ref)
                delivered += 1
        return delivered

    # --- one message -------------------------------------------------------------------------

    def _deliver(self, row: OutboxMessage) -> str:
        message = Message.from_dict(row.payload)
        kind = DestinationKind(row.destination_kind)
        known = self._known(message.key)
        if kind is DestinationKind.thread:
            root = self._known(f"{row.destination}:root")
            if root is None:
                raise NotReady(row.destination)
            channel, thread_ts = root.channel, root.ts
        elif kind is DestinationKind.dm:
            channel = known.channel if known else self._open_dm(row.destination)
            thread_ts = None
        else:
            channel, thread_ts = row.destination, None
        body: dict[str, Any] = {"channel": channel, "text": fallback_text(message),
                                "blocks": message_blocks(message)}
        if known is not None:
            response = self.client.chat_update(ts=known.ts, **{**body, "channel": known.channel})
        else:
            response = self.client.chat_postMessage(
                **body, thread_ts=thread_ts,
                metadata={"event_type": "noticebot_outbox",
                          "event_payload": {"outbox_id": row.id}},
            )
        ts = str(response["ts"])
        if message.key is not None and known is None:
            self._remember(message.key, str(response.get("channel", channel)), ts)
        return ts

    def _open_dm(self, user_id: str) -> str:
        response = self.client.conversations_open(users=user_id)
        return str(response["channel"]["id"])

    def _known(self, key: str | None) -> PlatformMessage | None:
        if key is None:
            return None
        with Session(self.engine) as session:
            return session.get(PlatformMessage, key)

    def _remember(self, key: str, channel: str, ts: str) -> None:
        with transaction(self.engine) as session:
            session.merge(PlatformMessage(message_key=key, channel=channel, ts=ts,
                                          updated_at=self.clock.now()))

    def _sent(self, row: OutboxMessage, ref: str) -> None:
        with transaction(self.engine) as session:
            session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id,
                       col(OutboxMessage.status) == OutboxStatus.pending)
                .values(status=OutboxStatus.sent, sent_at=self.clock.now(), platform_ref=ref,
                        attempts=row.attempts + 1, error=None)
            )

    def _failed(self, row: OutboxMessage, code: str, *, permanent: bool) -> None:
        log.warning("outbox %s to %s failed: %s", row.id, row.destination, code)
        with transaction(self.engine) as session:
            session.execute(
                update(OutboxMessage).where(col(OutboxMessage.id) == row.id)
                .values(attempts=row.attempts + 1, error=code,
                        status=OutboxStatus.dead if permanent else OutboxStatus.pending)
            )
