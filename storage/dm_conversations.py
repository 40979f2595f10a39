"""The 1:1 conversations platforms gave for people: read, remember (one statement, safe when
two loops open the same person's at once) and forget (when the platform refuses it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col

from config.platforms import Platform
from storage.db import insert_into
from storage.delivery_models import DmConversation


def known(session: Session, platform: Platform, identity: str) -> str | None:
    row = session.get(DmConversation, (platform, identity))
    return None if row is None else row.conversation


def remember(session: Session, platform: Platform, identity: str, conversation: str, *,
             at: datetime) -> None:
    insert = insert_into(session, DmConversation).values(
        platform=platform.value, identity=identity, conversation=conversation, opened_at=at)
    session.execute(insert.on_conflict_do_update(
        index_elements=[col(DmConversation.platform), col(DmConversation.identity)],
        set_={"conversation": conversation, "opened_at": at}))


def forget(session: Session, platform: Platform, identity: str, conversation: str) -> None:
    """Forget the conversation, unless another loop has meanwhile stored a newer one."""
    session.execute(delete(DmConversation).where(
        col(DmConversation.platform) == platform.value,
        col(DmConversation.identity) == identity,
        col(DmConversation.conversation) == conversation))
