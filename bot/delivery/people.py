"""People as a platform knows them: for opening DMs and rendering mentions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlmodel import Session, col, select

from bot.core.identities import identity
from bot.delivery.port import Recipient
from bot.messages import Message, mentioned_in, render_mentions
from config.platforms import Platform
from storage.models import AorChannel, Person


def recipient(session: Session, platform: Platform, user_id: str) -> Recipient | None:
    """The person on `platform`, or None if they have no identity there."""
    external = identity(session, platform, user_id)
    if external is None:
        return None
    person = session.get(Person, user_id)
    return Recipient(user_id=user_id, identity=external,
                     name=person.name if person is not None else user_id)


def recipients(session: Session, platform: Platform, message: Message) -> dict[str, Recipient]:
    """Everyone the message mentions, by person id, as `platform` knows them (people who are
    not on the platform are left out: a transport renders them by id)."""
    ids = mentioned_in(message)
    if not ids:
        return {}
    names = dict(session.exec(
        select(Person.user_id, Person.name).where(col(Person.user_id).in_(ids))).all())
    found: dict[str, Recipient] = {}
    for user_id in ids:
        external = identity(session, platform, user_id)
        if external is not None:
            found[user_id] = Recipient(user_id=user_id, identity=external,
                                       name=names.get(user_id, user_id))
    return found


def rendered(message: Message, render: Callable[[str], str]) -> Message:
    """The message with every mention in its texts replaced by `render(person id)`."""
    def on(text: str) -> str:
        return render_mentions(text, render)

    return replace(message, title=on(message.title), text=on(message.text),
                   preformatted=on(message.preformatted),
                   notes=tuple(on(note) for note in message.notes),
                   fields=tuple((label, on(value)) for label, value in message.fields))


def channel_service_url(session: Session, platform: Platform, conversation: str) -> str | None:
    """The service URL an AOR's channel conversation is reached through (Teams), if the roster
    gives one; a reply's conversation (`<channel>;messageid=<root>`) counts as its channel."""
    channel = conversation.split(";", 1)[0]
    return session.exec(
        select(AorChannel.service_url)
        .where(AorChannel.platform == platform.value, AorChannel.conversation == channel)
        .limit(1)
    ).first()
