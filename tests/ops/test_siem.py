"""Each committed record entry is streamed to the SIEM as one JSON line: metadata and digests,
never the content."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import pytest
from sqlmodel import Session, col, select

from bot.core.service import Core
from bot.ops.siem import install_siem, uninstall_siem
from config.settings import SiemSink
from storage.models import RecordEntry
from tests.helpers import OFFICER, SUBJECT, open_case


@pytest.fixture(autouse=True)
def _no_stream_left() -> Iterator[None]:
    yield
    uninstall_siem()


def test_committed_entries_stream_as_json_lines_without_content(core: Core) -> None:
    out = io.StringIO()
    install_siem(core.settings.model_copy(update={"siem": SiemSink.stdout}), stream=out)
    case_id = open_case(core)
    refused = core.command(actor="U0NOBODY", text=f"show {case_id}")
    assert not refused.ok
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    with Session(core.engine) as session:
        entries = session.exec(select(RecordEntry).order_by(col(RecordEntry.seq))).all()
    streamed = {line["seq"]: line for line in lines}
    new = [e for e in entries if e.seq in streamed]
    assert new and len(new) == len(lines)
    assert max(streamed) == entries[-1].seq
    for entry in new:
        line = streamed[entry.seq]
        assert line == {"type": "noticebot.record", "seq": entry.seq,
                        "at": entry.at.isoformat(), "actor": entry.actor, "kind": entry.kind,
                        "action": entry.action, "case_id": entry.case_id,
                        "payload_sha256": entry.payload_digest, "prev_hash": entry.prev_hash,
                        "hash": entry.hash}
    assert any(line["kind"] == "refusal" for line in lines)
    assert any(line["actor"] == OFFICER and line["case_id"] == case_id for line in lines)
    for detail in SUBJECT.values():
        assert detail not in out.getvalue()


def test_nothing_is_streamed_for_a_rolled_back_transaction(core: Core) -> None:
    out = io.StringIO()
    install_siem(core.settings.model_copy(update={"siem": SiemSink.stdout}), stream=out)
    from storage import record
    from storage.db import transaction

    with pytest.raises(RuntimeError), transaction(core.engine) as session:
        record.append(session, at=core.clock.now(), actor="t", kind="state", action="x")
        raise RuntimeError("rolled back")
    assert out.getvalue() == ""


def test_syslog_sink_sends_one_datagram_per_entry(core: Core) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    try:
        install_siem(core.settings.model_copy(update={
            "siem": SiemSink.syslog, "siem_syslog_address": f"127.0.0.1:{port}"}))
        core.command(actor=OFFICER, text="help")
        datagram = receiver.recv(65536).decode()
    finally:
        receiver.close()
    assert "noticebot: " in datagram
    line = json.loads(datagram.split("noticebot: ", 1)[1].rstrip("\x00\n"))
    assert line["type"] == "noticebot.record" and line["actor"] == OFFICER
