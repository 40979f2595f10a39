"""Who a Teams user is in noticebot: the Entra object id on the activity, looked up in the
neutral identity table (`person_identity`, filled from the roster's `teams = "<object id>"`)
through `bot.core.identities`, as every inbound adapter does. Outbound (who a 1:1 card goes to,
how a mention reads) is the delivery loop's: bot/delivery/people.py."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Engine

from bot.core.identities import person_for
from config.platforms import Platform
from storage.db import reading
from storage.models import Person


class TeamsDirectory(Protocol):
    def person_for(self, object_id: str) -> str | None:
        """The active person id behind an Entra object id, or None (not on the roster)."""
        ...

    def name_of(self, person_id: str) -> str:
        """How a mention of the person reads in a card."""
        ...


class IdentityDirectory:
    """The roster's Teams identities. An object id no active person has is None: the adapter
    refuses the request and records the attempt (`Interactions._actor`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _person(self, person_id: str) -> Person | None:
        with reading(self.engine) as session:
            return session.get(Person, person_id)

    def person_for(self, object_id: str) -> str | None:
        found = person_for(self.engine, Platform.teams, object_id)
        if found == f"{Platform.teams.value}:{object_id}":
            return None  # no person has this identity
        person = self._person(found)
        return person.user_id if person is not None and person.active else None

    def name_of(self, person_id: str) -> str:
        person = self._person(person_id)
        return person.name if person is not None else "someone"
