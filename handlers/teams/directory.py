"""How a person reads in a Teams card (a mention's name). Who a Teams user *is* is the core's
to say: the adapter hands it the Entra object id and the core resolves it, through the neutral
identity table (`person_identity`, filled from the roster's `teams = "<object id>"`), inside the
interaction's own transaction. Outbound (who a 1:1 card goes to) is the delivery loop's:
bot/delivery/people.py."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Engine

from storage.db import reading
from storage.models import Person


class TeamsDirectory(Protocol):
    def name_of(self, person_id: str) -> str:
        """How a mention of the person reads in a card."""
        ...


class IdentityDirectory:
    """Names from the roster."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def name_of(self, person_id: str) -> str:
        with reading(self.engine) as session:
            person = session.get(Person, person_id)
        return person.name if person is not None else "someone"
