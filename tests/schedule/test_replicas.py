"""R5: three bot processes (real OS processes) on one PostgreSQL database over a simulated
fortnight: every due reminder is sent once, each manager's digest once, nothing skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bot.core.service import Core
from bot.messages import ActionId, Message
from storage.models import DigestSent, OutboxMessage
from tests.conftest import TEST_KEY, on_postgres
from tests.helpers import OFFICER, TODAY, entries, open_case, press, to_approval, to_documents
from tests.schedule.replica import Replicas

REPLICAS = 3


@pytest.mark.skipif(not on_postgres(), reason="needs NOTICEBOT_TEST_DATABASE_URL (PostgreSQL)")
def test_r5_three_replicas_send_each_reminder_and_digest_once(
    core: Core, database_url: str, tmp_path: Path
) -> None:
    waiting = []
    for _ in range(4):  # four cases whose documents requests are never answered
        case_id = open_case(core)
        to_documents(core, case_id)
        press(core, OFFICER, case_id, ActionId.documents_sent,
              {"documents": ["warrant"], "sent_on": TODAY, "method": "e-mail"})
        waiting.append(case_id)
    for _ in range(2):  # two approvals nobody decides
        case_id = open_case(core)
        to_approval(core, case_id)
        press(core, OFFICER, case_id, ActionId.request_approval)
    replicas = Replicas(database_url, tmp_path, TEST_KEY, count=REPLICAS)
    try:
        moment = datetime(2026, 11, 23, 15, tzinfo=UTC)
        while moment < datetime(2026, 12, 8, 0, tzinfo=UTC):
            replicas.at(moment)
            moment += timedelta(hours=1)
        replicas.stop()
    finally:
        replicas.kill()
    # Each documents request: reminders on Nov 25, 30, Dec 2, 4 (4 each); never twice.
    reminder_entries = entries(core, action="reminder.sent")
    with Session(core.engine) as session:
        from storage import record
        from storage.vault import Vault

        vault = Vault((TEST_KEY,))
        payloads = [record.payload_of(session, e.seq, vault) for e in reminder_entries]
    keys = [(p["reminder_id"], p["count"]) for p in payloads if p]
    assert len(keys) == len(set(keys)), "a reminder was sent twice"
    per_case = {case_id: len(entries(core, action="reminder.sent", case_id=case_id))
                for case_id in waiting}
    assert per_case == {case_id: 4 for case_id in waiting}
    # Each approval: one nudge every business day at 09:00 Chicago from Nov 24 to Dec 7,
    # Thanksgiving and weekends skipped: 24, 25, 27, 30, 1, 2, 3, 4, 7 = 9.
    approvals = [p for p in payloads if p and "approval_id" in p]
    assert len(approvals) == 2 * 9
    with Session(core.engine) as session:
        digests = session.exec(select(DigestSent).order_by(col(DigestSent.iso_week))).all()
        dms = [Message.from_dict(r.payload) for r in session.exec(
            select(OutboxMessage).where(OutboxMessage.destination == "U0MGR1"))]
    assert [(d.iso_year, d.iso_week) for d in digests] == [(2026, 48), (2026, 49), (2026, 50)]
    assert len([m for m in dms if m.title.startswith("Weekly digest")]) == 3
