"""The per-interaction context: one transaction, one actor, the clock, the record and outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.messages import DestinationKind, Message
from config.settings import Settings
from storage import record
from storage.models import OutboxMessage, RecordEntry


@dataclass
class Ctx:
    session: Session
    clock: Clock
    settings: Settings
    actor: str
    now: datetime

    @property
    def today(self) -> date:
        return self.now.date()

    def record(
        self, kind: str, action: str, /, *, case_id: str | None = None, **payload: Any
    ) -> RecordEntry:
        return record.append(
            self.session,
            at=self.now,
            actor=self.actor,
            kind=kind,
            action=action,
            case_id=case_id,
            payload=payload,
        )

    def state(self, action: str, /, *, case_id: str | None = None, **payload: Any) -> None:
        """Record a state change (same transaction as the change)."""
        self.record("state", action, case_id=case_id, **payload)

    def send(
        self,
        kind: DestinationKind,
        destination: str,
        message: Message,
        *,
        case_id: str | None = None,
    ) -> bool:
        """Queue an outgoing message in the outbox and record it. A keyed message whose content
        has not changed since it was last queued is not queued again (returns False)."""
        payload = message.to_dict()
        if message.key is not None:
            last = self.session.exec(
                select(OutboxMessage.payload)
                .where(OutboxMessage.message_key == message.key)
                .order_by(col(OutboxMessage.id).desc())
                .limit(1)
            ).first()
            if last == payload:
                return False
        self.session.add(
            OutboxMessage(
                created_at=self.now,
                case_id=case_id,
                destination_kind=kind.value,
                destination=destination,
                message_key=message.key,
                payload=payload,
            )
        )
        self.record(
            "outbound",
            "message.queued",
            case_id=case_id,
            destination_kind=kind.value,
            destination=destination,
            key=message.key,
            message=payload,
        )
        return True
