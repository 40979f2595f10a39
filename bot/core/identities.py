"""A person's identities on each platform: outbound (who a DM goes to, how a mention renders)
and inbound (which person a platform user acts as).

`person.user_id` is noticebot's own id for a person. Before identities existed it was also the
person's Slack user id, and the migration gave every person that Slack identity; a person with
no identity rows at all is still reached on Slack by their id.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.messages import Message, mentioned_in
from config.platforms import Platform
from storage.models import Person, PersonIdentity


@dataclass(frozen=True)
class PlatformUser:
    """Who sent an inbound request, as the platform names them. The core resolves it to a
    person inside the interaction's own transaction (`acting_as`), so an adapter never
    needs a database session of its own to say who is acting."""

    platform: Platform
    id: str


# Who a core verb is called for: a person id (console, CLI, services) or a platform's user.
Actor = str | PlatformUser


def given_id(actor: object) -> object:
    """The id as the caller gave it (a platform's own id for a PlatformUser): what the
    inbound shape checks look at and what a refusal shows."""
    return actor.id if isinstance(actor, PlatformUser) else actor


def identity(session: Session, platform: Platform, user_id: str) -> str | None:
    """The person's id on `platform`, or None if they are not on it."""
    if platform is Platform.console:
        return user_id
    found = session.exec(
        select(PersonIdentity.platform, PersonIdentity.external_id)
        .where(PersonIdentity.user_id == user_id)
    ).all()
    for on, external_id in found:
        if on == platform.value:
            return external_id
    # Before identities existed a person's id was their Slack id; a DM to an id that is no
    # person (an admin set by hand) keeps going where it went.
    return user_id if platform is Platform.slack and not found else None


def reachable(session: Session, platform: Platform, user_id: str) -> bool:
    """Whether a direct message to the person can go out on `platform`."""
    return identity(session, platform, user_id) is not None


_ACTING = "noticebot.acting_as"


def acting_as(session: Session, user: PlatformUser) -> str:
    """The person id an inbound request from `user` acts as: every inbound request is resolved
    through here. An identity no person has acts as an unknown id, refused by the access
    checks and recorded: on Slack the id itself, as before identities existed (unless a person
    has that id and other identities: never act as them); elsewhere `<platform>:<id>`."""
    platform, external_id = user.platform, user.id
    if platform is Platform.console:
        return external_id
    # Teams' ids are GUIDs, the same in any case, stored in lower case (bot/roster.py).
    stored_as = external_id.lower() if platform is Platform.teams else external_id
    # The person comes with the identity: the access checks that follow find them in the
    # session instead of asking the database again. The session holds what it loaded only
    # weakly, so the person is kept for the session's life (`session.info`).
    found = session.exec(
        select(Person).join(PersonIdentity, col(PersonIdentity.user_id) == col(Person.user_id))
        .where(PersonIdentity.platform == platform.value,
               PersonIdentity.external_id == stored_as)
    ).first()
    if found is not None:
        session.info.setdefault(_ACTING, {})[found.user_id] = found
        return found.user_id
    if platform is Platform.slack and session.exec(
            select(PersonIdentity.user_id).where(PersonIdentity.user_id == external_id)
            .limit(1)).first() is None:
        return external_id  # no person, or a person from before identities existed
    return f"{platform.value}:{external_id}"


def mention_ids(session: Session, platform: Platform,
                messages: Iterable[Message]) -> dict[str, str]:
    """Person id -> id on `platform` of everyone the messages mention who is on it: how a
    surface renders mentions in what it shows the actor straight away."""
    found: dict[str, str] = {}
    for message in messages:
        for user_id in mentioned_in(message):
            if user_id not in found and (external := identity(session, platform, user_id)):
                found[user_id] = external
    return found


def names_of(session: Session, user_ids: Collection[str]) -> dict[str, str]:
    """Person id -> name of each of `user_ids` on the roster (one query, none for no ids)."""
    if not user_ids:
        return {}
    found = session.exec(select(Person.user_id, Person.name)
                         .where(col(Person.user_id).in_(list(user_ids)))).all()
    return {user_id: name for user_id, name in found}
