"""Record content may be missing only where the disposition log says it was disposed of (O32,
directive §6): any other removal is reported by `audit verify`, naming the entry, by the plain
walk and by the range verification alike; PostgreSQL refuses it outright."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from bot.core.service import Core
from bot.messages import ActionId
from storage import record
from storage.models import DispositionLog
from storage.opener import Opener, open_body
from storage.vault import PREFIX, Vault, generate_key
from tests.conftest import START, TEST_KEY
from tests.helpers import OFFICER, open_case, press, run_audit_verify, to_approval
from tests.storage.test_record import (
    delete_content,
    dispose_of,
    middle,
    postgres_only,
    row_count,
    tampering,
)
from tests.storage.test_record_ranges import verify


@pytest.fixture
def walked(core: Core) -> Core:
    """One case walked to the approval request, a second one opened."""
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    open_case(core)
    return core


def assert_all_agree(engine: Engine) -> record.VerifyResult:
    """The plain walk, ranges in this process and ranges in worker processes say the same."""
    plain = verify(engine)
    for per_range in (1, 3, 5):
        assert verify(engine, workers=1, per_range=per_range) == plain, per_range
    assert verify(engine, workers=2, per_range=4) == plain
    return plain


def test_o32_deleted_content_is_broken_naming_the_entry(walked: Core) -> None:
    engine = walked.engine
    seq = middle(engine)
    with tampering(engine) as connection:  # on PostgreSQL: with the guard switched off
        delete_content(connection, seq, seq + 2)
    result = assert_all_agree(engine)
    assert not result.ok
    assert result.broken_seq == seq
    assert "content is missing" in (result.problem or "")
    assert "disposition" in (result.problem or "")
    assert result.entries == seq - 1


def test_o32_content_disposed_of_under_the_log_verifies(walked: Core) -> None:
    engine = walked.engine
    seq = middle(engine)
    with tampering(engine) as connection:
        dispose_of(connection, seq)
    result = assert_all_agree(engine)
    assert result.ok, result
    assert result.entries == row_count(engine)


def test_o32_a_log_row_without_its_record_entry_excuses_nothing(walked: Core) -> None:
    """A disposition log row written behind the chain's back does not cover a deletion: the
    record must also hold the disposition's own entry."""
    engine = walked.engine
    seq = middle(engine)
    with tampering(engine) as connection:
        with Session(bind=connection) as session:
            session.add(DispositionLog(
                record_type="interaction", record_ref=f"entry:{seq}", schedule_item="X-1",
                authority="none", eligible_on=START.date(), disposed_on=START.date(),
                approved_by="U0REC1", entries_affected=1))
            session.flush()
        delete_content(connection, seq)
    result = assert_all_agree(engine)
    assert not result.ok and result.broken_seq == seq


def test_o32_a_disposition_covers_only_what_it_names(walked: Core) -> None:
    engine = walked.engine
    seq = middle(engine)
    with tampering(engine) as connection:
        dispose_of(connection, seq)
        delete_content(connection, seq + 1)
    result = assert_all_agree(engine)
    assert not result.ok and result.broken_seq == seq + 1


@pytest.mark.usefixtures("empty_cwd")
def test_o32_cli_audit_verify_reports_deleted_content(walked: Core, database_url: str) -> None:
    seq = middle(walked.engine)
    with tampering(walked.engine) as connection:
        delete_content(connection, seq)
    broken = run_audit_verify(database_url, TEST_KEY)
    assert broken.exit_code == 1, broken.output
    assert f"BROKEN at entry {seq}: content is missing" in broken.stderr
    assert not broken.output.startswith("OK")


@postgres_only
@pytest.mark.parametrize("statement", [
    "DELETE FROM record_payload WHERE seq IN (:seq, :seq + 2)",
    "DELETE FROM record_payload",
    "TRUNCATE record_payload",
])
def test_o32_postgres_refuses_removing_content_outside_disposition(
    walked: Core, statement: str
) -> None:
    engine = walked.engine
    before = verify(engine)
    seq = middle(engine)
    with pytest.raises(DBAPIError, match=r"disposition|append-only"), \
            engine.begin() as connection:
        connection.execute(text(statement), {"seq": seq})
    assert verify(engine) == before
    with Session(engine) as session:
        assert record.payload_of(session, seq, Vault((TEST_KEY,))) is not None


@postgres_only
def test_o32_postgres_lets_the_disposition_path_remove_content(walked: Core) -> None:
    engine = walked.engine
    seq = middle(engine)
    with engine.begin() as connection:  # no guard switched off: the log row makes it allowed
        dispose_of(connection, seq)
    with Session(engine) as session:
        assert record.payload_of(session, seq) is None
    assert verify(engine).ok


def test_the_walks_fernet_opener_agrees_with_the_vault() -> None:
    """The verification's own Fernet opening (P6, T2) gives exactly what `Vault.open` gives,
    for every key of a rotation, any length and any alteration, or defers to it."""
    old, new = generate_key(), generate_key()
    writer, reader = Vault((old,)), Vault((new, old))
    opened = Opener(reader)
    texts = ["", "x", "a" * 15, "b" * 16, "c" * 17, "Ünïcode ✓ " * 9, '{"k":1}' * 40]
    for plain in texts:
        for vault in (writer, Vault((new,))):
            sealed = vault.seal(plain)
            assert opened(sealed) == reader.open(sealed) == plain
    sealed = writer.seal("payload")
    token = sealed[len(PREFIX):]
    raw = bytearray(base64.urlsafe_b64decode(token))
    for position in (0, 5, 20, 30, len(raw) - 40, len(raw) - 1):
        altered = bytearray(raw)
        altered[position] ^= 1
        body = PREFIX + base64.urlsafe_b64encode(bytes(altered)).decode()
        assert opened(body) is None
    for body in (PREFIX + "not base64!", PREFIX + token[:-8], PREFIX, "plain text"):
        assert opened(body) == open_body(reader, body)
    assert Opener(Vault((generate_key(),)))(sealed) is None  # no key fits
