"""Who a Teams user is in noticebot, and who a noticebot person is in Teams.

One small protocol, so the adapter does not care where identities are kept. Until per-platform
identities land (the architecture issue), `PersonTableDirectory` reads today's Person table:
a person's Teams identity is given by `aliases` (object id -> person id), else a person whose
user id is the object id written without hyphens (32 characters, as the column holds)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.models import Person


class TeamsDirectory(Protocol):
    def person_for(self, object_id: str) -> str | None:
        """The active person id behind an Entra object id, or None (not on the roster)."""
        ...

    def object_id_of(self, person_id: str) -> str | None:
        """The Entra object id of a person (to open a 1:1 chat), or None."""
        ...

    def name_of(self, person_id: str) -> str:
        """How a mention of the person reads in a card."""
        ...


def compact(object_id: str) -> str | None:
    """An Entra object id as 32 hex digits, or None when it is not an object id."""
    try:
        return uuid.UUID(object_id).hex
    except (ValueError, AttributeError, TypeError):
        return None


class PersonTableDirectory:
    def __init__(self, engine: Engine, aliases: Mapping[str, str] | None = None) -> None:
        self.engine = engine
        self.aliases = {compact(k) or k: v for k, v in (aliases or {}).items()}
        self.reverse = {v: k for k, v in self.aliases.items()}

    def _person(self, person_id: str) -> Person | None:
        with Session(self.engine) as session:
            return session.get(Person, person_id)

    def person_for(self, object_id: str) -> str | None:
        key = compact(object_id)
        if key is None:
            return None
        person = self._person(self.aliases.get(key, key))
        return person.user_id if person is not None and person.active else None

    def object_id_of(self, person_id: str) -> str | None:
        key = self.reverse.get(person_id, person_id)
        try:
            return str(uuid.UUID(hex=key))
        except ValueError:
            return None

    def name_of(self, person_id: str) -> str:
        person = self._person(person_id)
        return person.name if person is not None else "someone"
