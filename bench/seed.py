"""Bulk seeding shared by the sweep (P3) and digest (P4) benchmarks.

Rows go straight into the tables the product reads (the same columns and encodings the ORM
writes), in bulk: COPY on PostgreSQL, one executemany transaction on SQLite. Creating them
through the workflow would take hours at these sizes and time the seeding, not the sweeps.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from storage.db import create_db_engine, upgrade
from storage.vault import Vault

# Zones all in working hours at the sweep benchmark's clock (Tuesday 18:00 UTC) and past
# Monday 08:00 at the digest benchmark's clock (Monday 18:00 UTC).
US_ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
            "America/Los_Angeles")
COUNTRIES = ("MX", "CO", "GT", "HN", "SV", "BR", "RU", "CN", "IN", "NG", "PH", "VN", "DE", "FR")


def migrated_engine(url: str) -> Engine:
    engine = create_db_engine(url)
    upgrade(engine)
    return engine


def bulk_load(engine: Engine, table_name: str, columns: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> int:
    """Insert `rows` (tuples in `columns` order, Python values as the models hold them) into
    `table_name` in one transaction; returns how many."""
    table = SQLModel.metadata.tables[table_name]
    count = 0
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        if isinstance(driver, psycopg.Connection):
            names = ", ".join(f'"{name}"' for name in columns)
            with driver.cursor() as cursor:
                with cursor.copy(f'COPY "{table_name}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row([json.dumps(v) if isinstance(v, dict | list) else v
                                        for v in row])
                        count += 1
                serial = table.autoincrement_column
                if serial is not None and serial.name in columns:
                    # Explicit ids: move the sequence past them, as later inserts rely on it.
                    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table_name}', "
                                   f"'{serial.name}'), (SELECT max(\"{serial.name}\") "
                                   f"FROM \"{table_name}\"))")
            driver.commit()
        else:
            assert isinstance(driver, sqlite3.Connection), driver
            # The same encodings SQLAlchemy would bind (naive-UTC datetime text, JSON text, …).
            dialect = engine.dialect
            processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                          for name in columns]
            marks = ", ".join("?" for _ in columns)
            statement = f'INSERT INTO "{table_name}" ({", ".join(columns)}) VALUES ({marks})'

            def encoded() -> Iterator[list[Any]]:
                nonlocal count
                for row in rows:
                    count += 1
                    yield [p(v) if p is not None and v is not None else v
                           for p, v in zip(processors, row, strict=True)]

            driver.execute("BEGIN")  # the connection is in autocommit mode (see storage.db)
            driver.executemany(statement, encoded())
            driver.execute("COMMIT")
    finally:
        raw.close()
    return count


def analyze(engine: Engine) -> None:
    """PostgreSQL's autovacuum would have analyzed tables this size; SQLite has no such habit
    and the product never runs ANALYZE there, so neither does the benchmark."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()


# --- the roster ---------------------------------------------------------------------------------


@dataclass
class Roster:
    aors: list[str] = field(default_factory=list)
    chains: dict[str, list[str]] = field(default_factory=dict)  # AOR → FRO, designees
    officers: dict[str, list[str]] = field(default_factory=dict)  # AOR → officers
    managers: dict[str, list[str]] = field(default_factory=dict)  # manager → AORs


def seed_roster(engine: Engine, rng: random.Random, *, aors: int, officers_per_aor: int,
                managers: int, today: date, now: datetime,
                expiring: int = 0) -> tuple[Roster, list[str]]:
    """AORs with a two- or three-person approver chain and officers; `managers` managers
    spread over them (some oversee a second AOR). Training on record for nearly everyone at
    varied ages; the first `expiring` officers' training expires within 30 days (returned)."""
    roster = Roster()
    people: list[tuple[str, str, str, str | None, str, bool]] = []
    roles: list[tuple[str, str]] = []
    for a in range(aors):
        aor = f"A{a:03d}"
        zone = US_ZONES[a % len(US_ZONES)]
        roster.aors.append(aor)
        chain = [f"U0S{a:03d}{k}" for k in range(2 + (a % 3 == 0))]
        roster.chains[aor] = chain
        roster.officers[aor] = [f"U0O{a:03d}{k:03d}" for k in range(officers_per_aor)]
        for user in chain:
            people.append((user, f"Supervisor {user}", f"{user.lower()}@example.gov", aor,
                           zone, True))
            roles.append((user, "supervisor"))
        for user in roster.officers[aor]:
            people.append((user, f"Officer {user}", f"{user.lower()}@example.gov", aor,
                           zone, True))
            roles.append((user, "officer"))
    for m in range(managers):
        user = f"U0M{m:04d}"
        home = roster.aors[m % aors]
        overseen = [home]
        if m % 5 == 4 and aors > 1:  # regional managers also oversee a neighbouring AOR
            overseen.append(roster.aors[(m + 1) % aors])
        roster.managers[user] = overseen
        people.append((user, f"Manager {user}", f"{user.lower()}@example.gov", home,
                       rng.choice(US_ZONES), True))
        roles.append((user, "manager"))
    bulk_load(engine, "aor", ("id", "name", "channel", "active"),
              ((aor, f"Field office {aor}", f"C0{aor}", True) for aor in roster.aors))
    bulk_load(engine, "person", ("user_id", "name", "email", "aor_id", "timezone", "active"),
              people)
    bulk_load(engine, "person_role", ("user_id", "role"), roles)
    bulk_load(engine, "aor_approver", ("aor_id", "position", "user_id"),
              ((aor, i, user) for aor, chain in roster.chains.items()
               for i, user in enumerate(chain)))
    bulk_load(engine, "aor_manager", ("aor_id", "user_id"),
              ((aor, user) for user, overseen in roster.managers.items() for aor in overseen))
    officers = [user for users in roster.officers.values() for user in users]
    soon = set(officers[:expiring])
    training = []
    for person in people:
        user = person[0]
        if user in soon:
            completed = today - timedelta(days=365 - rng.randint(1, 29))
        elif rng.random() < 0.05:
            continue  # no training on record
        else:
            completed = today - timedelta(days=rng.randint(10, 420))  # some lapsed
        training.append((user, completed, "bench", now))
    bulk_load(engine, "training_completion", ("user_id", "completed_on", "source", "recorded_at"),
              training)
    return roster, officers[:expiring]


# --- cases --------------------------------------------------------------------------------------


class SealedPool:
    """Encrypted subject details as the product stores them (Fernet, like `seal_case`); a pool
    reused across rows, since the length of the text, not its uniqueness, is what costs."""

    def __init__(self, vault: Vault, rng: random.Random, size: int = 40) -> None:
        self._rng = rng
        self.names = [vault.seal(f"Subject {i} Lastname{i}") for i in range(size)]
        self.identifiers = [vault.seal(f"DOB 19{50 + i % 50}-0{1 + i % 9}-1{i % 10}, "
                                       f"A-{100 + i}-456-789") for i in range(size)]
        self.offenses = [vault.seal(f"Offense summary {i}: " + "armed robbery and fraud " * 4)
                         for i in range(size)]
        self.notes = [vault.seal(f"Notes {i}: " + "seen near the border crossing " * 6)
                      for i in range(size)]
        self.references = [vault.seal(f"A-{4000 + i}/9-20{10 + i % 15}") for i in range(size)]

    def pick(self, values: list[str]) -> str:
        return self._rng.choice(values)


CASE_COLUMNS = ("id", "notice_type", "intended_use", "extradition_pending", "aor_id", "officer",
                "channel", "stage", "close_reason", "review_outcome", "documents_preferred",
                "opened_at", "closed_at", "notice_reference", "subject_name",
                "subject_identifiers", "issuing_country", "offense_summary", "published_on",
                "notes")


def case_row(pool: SealedPool, rng: random.Random, *, case_id: str, aor: str, officer: str,
             stage: str, opened_at: datetime, closed_at: datetime | None = None,
             close_reason: str | None = None) -> tuple[Any, ...]:
    notice_type = "red_notice" if case_id.startswith("RN") else "diffusion"
    past_review = stage not in ("validity", "review") and close_reason not in (
        "notice_inactive", "withdrawn", None)
    return (case_id, notice_type, rng.choice(("enforcement", "immigration", "both")),
            rng.random() < 0.1, aor, officer, f"C0{aor}", stage, close_reason,
            "no_indications" if past_review else None, False, opened_at, closed_at,
            pool.pick(pool.references), pool.pick(pool.names), pool.pick(pool.identifiers),
            rng.choice(COUNTRIES), pool.pick(pool.offenses),
            opened_at.date() - timedelta(days=rng.randint(30, 3000)), pool.pick(pool.notes))


def case_id_for(index: int, year: int, rng: random.Random) -> str:
    return f"{'RN' if rng.random() < 0.8 else 'WD'}-{year}-{index:05d}"


REQUEST_COLUMNS = ("id", "case_id", "kind", "status", "sent_on", "sent_by", "method",
                   "reference", "details", "answer", "answered_on", "answered_by",
                   "answer_reference", "answer_details", "recorded_at", "channel",
                   "delivery_attempts")

APPROVAL_COLUMNS = ("id", "case_id", "kind", "requested_by", "requested_at", "routed_to",
                    "status", "decided_by", "decided_at", "reason", "justification")


def request_row(request_id: int, case_id: str, kind: str, officer: str, sent_on: date,
                answered_on: date | None, answer: str | None) -> tuple[Any, ...]:
    recorded = datetime.combine(sent_on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=15)
    return (request_id, case_id, kind, "answered" if answer else "sent", sent_on, officer,
            "USNCB e-mail", f"REF-{request_id}", {}, answer, answered_on,
            officer if answer else None, "", {}, recorded, "manual", 0)


def approval_row(approval_id: int, case_id: str, officer: str, routed_to: str,
                 requested_at: datetime, status: str) -> tuple[Any, ...]:
    decided = status != "pending"
    return (approval_id, case_id, "use", officer, requested_at, routed_to, status,
            routed_to if decided else None,
            requested_at + timedelta(hours=20) if decided else None, "", "")
