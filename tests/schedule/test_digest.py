"""A digest sweep reads every AOR's facts once and gives each manager what their own AORs hold:
the same digest `/notice digest` shows them at that moment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from bot.app import load_roster_text, sample_roster_text
from bot.clock import ManualClock
from bot.core.context import unit_of_work
from bot.core.service import Core
from bot.messages import ActionId, Message
from bot.schedule.digest import build_digest, sweep_digests
from storage.models import OutboxMessage
from tests.helpers import (
    CLEAN_REVIEW,
    MANAGER,
    OFFICER,
    TODAY,
    open_case,
    press,
    to_approval,
    to_documents,
    to_review,
)

MIA_OFFICER, MIA_FRO, REGIONAL = "U0OFF3", "U0SUP3", "U0MGR2"


def two_aor_roster(today: date) -> str:
    """The sample roster plus a Miami AOR; a regional manager oversees Houston and Miami."""
    expiring = (today - timedelta(days=340)).isoformat()  # expires 25 days after `today`
    return sample_roster_text(today).replace(
        'managers = ["U0MGR1"]', f'managers = ["U0MGR1", "{REGIONAL}"]'
    ) + f"""
[[aor]]
id = "MIA"
name = "Miami ERO"
supervisors = ["{MIA_FRO}"]
managers = ["{REGIONAL}"]
channel = "C0MIACASES"

[[person]]
user = "{MIA_OFFICER}"
name = "Mia Officer"
email = "mia.officer@example.gov"
roles = ["officer"]
aor = "MIA"
training_completed = {expiring}
timezone = "America/New_York"

[[person]]
user = "{MIA_FRO}"
name = "Miles Supervisor"
email = "miles.supervisor@example.gov"
roles = ["supervisor"]
aor = "MIA"
training_completed = {today.isoformat()}
timezone = "America/New_York"

[[person]]
user = "{REGIONAL}"
name = "Rita Regional"
email = "rita.regional@example.gov"
roles = ["manager"]
aor = "MIA"
training_completed = {today.isoformat()}
timezone = "America/New_York"
"""


@pytest.fixture
def two_aors(bare_core: Core, clock: ManualClock) -> Core:
    load_roster_text(bare_core, two_aor_roster(clock.now().date()), actor="test",
                     source="two AORs")
    return bare_core


def digests(core: Core) -> dict[str, Message]:
    with Session(core.engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    found = {r.destination: Message.from_dict(r.payload) for r in rows}
    return {who: m for who, m in found.items() if m.title.startswith("Weekly digest")}


def test_one_sweep_gives_each_manager_their_own_aors(two_aors: Core,
                                                     clock: ManualClock) -> None:
    core = two_aors
    waiting = open_case(core)  # HOU: the documents request goes unanswered
    to_documents(core, waiting)
    assert press(core, OFFICER, waiting, ActionId.documents_sent,
                 {"documents": ["warrant"], "sent_on": TODAY, "method": "e-mail"}).ok
    withdrawn_last_week = open_case(core)
    assert press(core, OFFICER, withdrawn_last_week, ActionId.withdraw,
                 {"reason": "duplicate"}).ok
    pending = open_case(core, actor=MIA_OFFICER)  # MIA: approval nobody decides
    to_approval(core, pending, MIA_OFFICER)
    assert press(core, MIA_OFFICER, pending, ActionId.request_approval).ok
    misuse = open_case(core, actor=MIA_OFFICER)
    to_review(core, misuse, MIA_OFFICER)
    # Monday 2026-11-30 08:00 in New York, 07:00 in Chicago: this week's events.
    clock.set(datetime(2026, 11, 30, 13, tzinfo=UTC))
    assert press(core, MIA_OFFICER, misuse, ActionId.review,
                 {**CLEAN_REVIEW, "indicators": ["fabricated_evidence"],
                  "outcome": "misuse"}).ok
    opened_this_week = open_case(core)
    clock.set(datetime(2026, 11, 30, 14, 5, tzinfo=UTC))

    assert sweep_digests(engine=core.engine, clock=clock, settings=core.settings) == 2
    sent = digests(core)
    assert set(sent) == {MANAGER, REGIONAL}
    with unit_of_work(core.engine, clock=clock, settings=core.settings, actor="test") as ctx:
        for manager, message in sent.items():
            assert message == build_digest(ctx, manager), manager  # as asked for on demand

    local = dict(sent[MANAGER].fields)
    assert local["AORs"] == "HOU"
    assert local["Opened this week"] == "1"
    assert local["Closed this week"] == "0"  # the withdrawal was last week
    assert local["Misuse / prohibited findings"] == "none"
    assert "Underlying documentation: 1" in local["Open by stage"]
    assert "Supervisory approval" not in local["Open by stage"]
    notes = "\n".join(sent[MANAGER].notes)
    assert f"USNCB overdue: {waiting} documents: 7 days" in notes
    assert pending not in notes and misuse not in notes and MIA_OFFICER not in notes

    regional = dict(sent[REGIONAL].fields)
    assert sorted(regional["AORs"].split(", ")) == ["HOU", "MIA"]
    assert regional["Opened this week"] == "1"
    assert regional["Closed this week"] == "1"
    assert regional["Misuse / prohibited findings"] == misuse
    assert "Supervisory approval: 1" in regional["Open by stage"]
    assert "Underlying documentation: 1" in regional["Open by stage"]
    notes = "\n".join(sent[REGIONAL].notes)
    assert f"USNCB overdue: {waiting} documents: 7 days" in notes
    assert f"Approval pending: {pending} (use) waiting for <@{MIA_FRO}>: 7 days" in notes
    assert f"Training: <@{MIA_OFFICER}>: expires 2026-12-18" in notes
    assert "Training: <@U0OFF2>: expired or none on record" in notes
    assert opened_this_week not in notes
