"""Roster import (README): validated whole, errors name line and key, idempotent, recorded."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session, select

from bot.app import load_roster_text, sample_roster_text
from bot.core.service import Core
from bot.roster import RosterError, parse_roster
from storage.models import AorApprover, Person
from tests.helpers import entries

TODAY = date(2026, 11, 23)
GOOD = """
[[aor]]
id = "HOU"
name = "Houston ERO"
supervisors = ["U0SUP1"]
managers = []

[[person]]
user = "U0SUP1"
name = "Sam"
email = "sam@example.gov"
roles = ["supervisor"]
aor = "HOU"
training_completed = 2026-03-01
timezone = "America/Chicago"
"""


def test_roster_file_of_the_spec_parses() -> None:
    roster = parse_roster(GOOD, today=TODAY)
    assert roster.aor[0].supervisors == ["U0SUP1"]
    assert roster.person[0].training_completed == date(2026, 3, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[aor]\nid=1", "not valid TOML"),
        (GOOD.replace('roles = ["supervisor"]', 'roles = ["boss"]'), "line 12: [[person]] #1 key 'roles'"),
        (GOOD.replace('timezone = "America/Chicago"', 'timezone = "Mars/Olympus"'), "unknown time zone"),
        (GOOD.replace('email = "sam@example.gov"', 'emial = "sam@example.gov"'), "key 'emial': unknown key"),
        (GOOD.replace('aor = "HOU"', 'aor = "DAL"'), "no [[aor]] with id 'DAL'"),
        (GOOD.replace('supervisors = ["U0SUP1"]', 'supervisors = ["U0SUP9"]'), "U0SUP9 has no [[person]] entry"),
        (GOOD.replace('roles = ["supervisor"]', 'roles = ["officer"]'), "U0SUP1 lacks the 'supervisor' role"),
        (GOOD.replace("2026-03-01", "2027-03-01"), "is in the future"),
        (GOOD.replace('user = "U0SUP1"', 'user = "bob"'), "key 'user'"),
    ],
)
def test_r9_malformed_roster_names_the_problem(text: str, expected: str) -> None:
    with pytest.raises(RosterError) as error:
        parse_roster(text, today=TODAY)
    assert expected in str(error.value)


def test_import_twice_is_idempotent_and_changes_are_recorded(bare_core: Core) -> None:
    text = sample_roster_text(TODAY)
    first = load_roster_text(bare_core, text, actor="admin", source="t")
    assert first.changed
    recorded = len(entries(bare_core))
    second = load_roster_text(bare_core, text, actor="admin", source="t")
    assert not second.changed
    # Only the import command itself and its summary are added: no change entries.
    assert len(entries(bare_core)) == recorded + 2
    edited = text.replace('supervisors = ["U0SUP1", "U0SUP2"]', 'supervisors = ["U0SUP2"]')
    third = load_roster_text(bare_core, edited, actor="admin", source="t")
    assert len(third.changes) == 1 and entries(bare_core, action="roster.approvers_changed")
    with Session(bare_core.engine) as session:
        chain = session.exec(select(AorApprover.user_id)).all()
    assert chain == ["U0SUP2"]


def test_people_missing_from_a_new_roster_are_deactivated_not_deleted(bare_core: Core) -> None:
    text = sample_roster_text(TODAY)
    load_roster_text(bare_core, text, actor="admin", source="t")
    start = text.index('[[person]]\nuser = "U0OFF2"')
    end = text.index("[[person]]", start + 5)
    load_roster_text(bare_core, text[:start] + text[end:], actor="admin", source="t")
    with Session(bare_core.engine) as session:
        gone = session.get(Person, "U0OFF2")
    assert gone is not None and not gone.active


def test_r9_bad_roster_writes_nothing(bare_core: Core) -> None:
    bad = sample_roster_text(TODAY).replace('aor = "HOU"\ntraining_completed', 'aor = "X"\n'
                                            'training_completed', 1)
    with pytest.raises(RosterError):
        load_roster_text(bare_core, bad, actor="admin", source="t")
    with Session(bare_core.engine) as session:
        assert session.exec(select(Person)).first() is None
    assert entries(bare_core) == []
