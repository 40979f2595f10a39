"""Signed checkpoints (AU-9(3), AU-10) and incremental verification: a checkpoint is signed by
a key outside the database, verification refuses a forged or unknown-key checkpoint, a fork
between checkpoints, and tampering before, at and after a checkpoint."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from bot.clock import ManualClock
from bot.core.service import Core
from bot.messages import ActionId
from bot.records import checkpoints
from bot.records.checkpoints import CheckpointError, make_checkpoint
from bot.records.disposition import dispose
from bot.records.retention import load_schedule
from config.settings import Settings
from handlers.cli import main
from storage import merkle, record
from storage.models import OutboxMessage, RecordEntry
from storage.vault import Vault
from tests.conftest import TEST_KEY
from tests.helpers import OFFICER, open_case, press, to_approval
from tests.records.test_disposition import SCHEDULE, as_records
from tests.records.test_heads import rewrite_from, tampering
from tests.storage.test_record import postgres_only


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "checkpoint.pem"
    path.parent.mkdir()
    checkpoints.generate_key_file(path)
    return path


@pytest.fixture
def signing(settings: Settings, key_file: Path, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"checkpoint_key_file": str(key_file),
                                       "heads_file": str(tmp_path / "heads.jsonl"),
                                       "records_channel": "C0RECORDS"})


@pytest.fixture
def walked(core: Core) -> Core:
    to_approval(core, open_case(core))
    return core


def sign_now(engine: Engine, settings: Settings, clock: ManualClock) -> checkpoints.Signed:
    return make_checkpoint(engine=engine, settings=settings, clock=clock)


def verify(settings: Settings, *args: str) -> Result:
    env = {"NOTICEBOT_DATABASE_URL": settings.database_url, "NOTICEBOT_ENV": "development",
           "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY, "NOTICEBOT_HEADS_FILE": settings.heads_file,
           "NOTICEBOT_CHECKPOINT_KEY_FILE": settings.checkpoint_key_file}
    return CliRunner().invoke(main, ["audit", "verify", *args], env=env)


def heads_lines(settings: Settings) -> list[dict[str, object]]:
    return [json.loads(line) for line in Path(settings.heads_file).read_text().splitlines()]


def write_lines(settings: Settings, lines: list[dict[str, object]]) -> None:
    Path(settings.heads_file).write_text("".join(json.dumps(v) + "\n" for v in lines))


def size_of(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(RecordEntry.seq)).all())


def test_key_generate_prints_the_public_key_and_never_overwrites(
        tmp_path: Path, empty_cwd: Path) -> None:
    path = tmp_path / "ck.pem"
    result = CliRunner().invoke(main, ["keys", "checkpoint-key", "generate", "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert os.stat(path).st_mode & 0o777 == 0o600
    public = next(line.split()[-1] for line in result.output.splitlines()
                  if line.startswith("public key:"))
    assert public.startswith("ed25519:") and len(base64.b64decode(public[8:])) == 32
    settings = Settings(_env_file=None, checkpoint_key_file=str(path))
    assert list(checkpoints.known_keys(settings)) == [
        next(line.split()[-1] for line in result.output.splitlines()
             if line.startswith("fingerprint:"))]
    again = CliRunner().invoke(main, ["keys", "checkpoint-key", "generate", "--out", str(path)])
    assert again.exit_code != 0 and "never overwritten" in again.output


def test_checkpoint_is_signed_appended_recorded_and_posted(
        walked: Core, engine: Engine, signing: Settings, clock: ManualClock) -> None:
    size = size_of(engine)
    signed = sign_now(engine, signing, clock)
    assert signed.checkpoint.size == size and signed.checkpoint.previous == "none"
    line = heads_lines(signing)[-1]
    assert (line["seq"], line["hash"], line["key"]) == (size, signed.checkpoint.head, signed.key)
    # Anyone holding the public key can check it, with nothing but the text and the signature.
    public = checkpoints.load_private(signing).public_key()
    public.verify(base64.b64decode(str(line["signature"])), str(line["checkpoint"]).encode())
    with Session(engine) as session:
        logged = session.exec(select(RecordEntry)
                              .where(RecordEntry.action == "records.checkpoint_signed")).all()
        assert [entry.seq for entry in logged] == [size + 1]  # after what it signed
        posted = session.exec(select(OutboxMessage)
                              .where(OutboxMessage.destination == "C0RECORDS")).all()
        assert len(posted) == 1 and f"checkpoint {size}" in str(posted[0].payload)
    clock.advance(timedelta(hours=1))
    second = sign_now(engine, signing, clock)
    assert second.checkpoint.previous == signed.checkpoint.digest()
    assert second.checkpoint.size > size


def test_incremental_verify_covers_only_what_came_after_the_checkpoint(
        walked: Core, engine: Engine, signing: Settings, clock: ManualClock) -> None:
    signed = sign_now(engine, signing, clock)
    open_case(walked)
    new = size_of(engine) - signed.checkpoint.size
    result = verify(signing)
    assert result.exit_code == 0, result.output
    assert f"OK: {new} entries verified since checkpoint {signed.checkpoint.size}" in result.output
    full = verify(signing, "--full")
    assert full.exit_code == 0, full.output
    assert f"OK: {size_of(engine)} entries verified" in full.output
    assert "1 signed checkpoints match" in full.output


def test_a_forged_checkpoint_is_refused(walked: Core, engine: Engine, signing: Settings,
                                        clock: ManualClock) -> None:
    sign_now(engine, signing, clock)
    lines = heads_lines(signing)
    lines[0]["checkpoint"] = str(lines[0]["checkpoint"]).replace("size ", "size 1", 1)
    lines[0]["seq"] = int(str(lines[0]["seq"])) + 10 ** len(str(lines[0]["seq"]))
    write_lines(signing, lines)
    for args in ((), ("--full",)):
        result = verify(signing, *args)
        assert result.exit_code == 1
        assert "signature of checkpoint" in result.output and "does not verify" in result.output


def test_a_checkpoint_signed_by_an_unknown_key_is_refused(
        walked: Core, engine: Engine, signing: Settings, clock: ManualClock) -> None:
    signed = sign_now(engine, signing, clock)
    stranger = checkpoints.sign(Ed25519PrivateKey.generate(), signed.checkpoint)
    write_lines(signing, [json.loads(stranger.to_line())])
    result = verify(signing)
    assert result.exit_code == 1 and "signed by an unknown key" in result.output
    # An unsigned head is not accepted either once checkpoints are signed.
    write_lines(signing, [{"published_at": "x", "seq": 1, "hash": signed.checkpoint.head}])
    result = verify(signing)
    assert result.exit_code == 1 and "unsigned head" in result.output


def test_two_checkpoints_that_disagree_are_a_fork(
        walked: Core, engine: Engine, signing: Settings, clock: ManualClock) -> None:
    key = checkpoints.load_private(signing)
    first = sign_now(engine, signing, clock)
    open_case(walked)
    clock.advance(timedelta(hours=1))
    second = sign_now(engine, signing, clock)
    # The first checkpoint re-signed over another history (same size, another root); the second
    # names it as its predecessor: both signatures are good, the two trees are not one.
    forked = replace(first.checkpoint, root="ab" * 32)
    rechained = replace(second.checkpoint, previous=forked.digest())
    write_lines(signing, [json.loads(checkpoints.sign(key, forked).to_line()),
                          json.loads(checkpoints.sign(key, rechained).to_line())])
    result = verify(signing)
    assert result.exit_code == 1
    assert f"checkpoint {second.checkpoint.size} is not consistent with checkpoint " \
           f"{first.checkpoint.size}" in result.output
    full = verify(signing, "--full")
    assert full.exit_code == 1 and f"checkpoint {first.checkpoint.size} does not match" \
        in full.output
    with pytest.raises(CheckpointError, match="not consistent"):
        sign_now(engine, signing, clock)


def alter_actor(engine: Engine, seq: int) -> None:
    with tampering(engine) as connection:
        connection.execute(text("UPDATE record_entry SET actor = 'U0EVIL' WHERE seq = :s"),
                           {"s": seq})


@pytest.mark.parametrize("position", ["first", "middle", "at checkpoint", "after", "last"])
def test_tampering_at_every_position_is_detected(
        walked: Core, engine: Engine, signing: Settings, clock: ManualClock,
        position: str) -> None:
    signed = sign_now(engine, signing, clock)
    open_case(walked)
    at = signed.checkpoint.size
    seq = {"first": 1, "middle": at // 2, "at checkpoint": at, "after": at + 2,
           "last": size_of(engine)}[position]
    alter_actor(engine, seq)
    full = verify(signing, "--full")
    assert full.exit_code == 1 and f"BROKEN at entry {seq}: hash does not match" in full.output
    incremental = verify(signing)
    if seq < at:  # before the checkpoint: only --full walks it (by design: cost ∝ new entries)
        assert incremental.exit_code == 0, incremental.output
    else:
        assert incremental.exit_code == 1 and f"entry {seq}" in incremental.output


def test_history_rewritten_under_a_checkpoint_is_detected(
        walked: Core, engine: Engine, signing: Settings, clock: ManualClock) -> None:
    signed = sign_now(engine, signing, clock)
    rewrite_from(engine, 3)  # a chain that verifies again on its own
    result = verify(signing)
    assert result.exit_code == 1
    assert f"entry {signed.checkpoint.size} differs from checkpoint" in result.output
    full = verify(signing, "--full")
    assert full.exit_code == 1 and "does not match the record" in full.output


def test_o32_disposed_entry_keeps_its_leaf_and_its_proof_says_so(
        core: Core, engine: Engine, signing: Settings, clock: ManualClock,
        tmp_path: Path) -> None:
    schedule_file = tmp_path / "retention.toml"
    schedule_file.write_text(SCHEDULE, encoding="utf-8")
    core.settings = signing.model_copy(update={"retention_file": str(schedule_file)})
    case_id = open_case(core)
    assert press(core, OFFICER, case_id, ActionId.withdraw, {"reason": "test"}).ok
    signed = sign_now(engine, core.settings, clock)
    with Session(engine) as session:
        seq = session.exec(select(RecordEntry.seq).where(RecordEntry.case_id == case_id)
                           .order_by(col(RecordEntry.seq))).first()
    assert seq is not None
    clock.advance(timedelta(days=365 * 10 + 3))
    schedule = load_schedule(str(schedule_file))
    assert as_records(core, lambda ctx: dispose(ctx, schedule, [case_id])).ok
    # Verification after disposal: incremental (the tombstone is before the checkpoint, the
    # disposal after it), then a new checkpoint over it, then everything.
    assert verify(core.settings).exit_code == 0
    sign_now(engine, core.settings, clock)
    for args in ((), ("--full",)):
        result = verify(core.settings, *args)
        assert result.exit_code == 0, result.output
    env = {"NOTICEBOT_DATABASE_URL": signing.database_url, "NOTICEBOT_ENV": "development",
           "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY, "NOTICEBOT_HEADS_FILE": signing.heads_file,
           "NOTICEBOT_CHECKPOINT_KEY_FILE": signing.checkpoint_key_file}
    proved = CliRunner().invoke(main, ["audit", "prove", str(seq)], env=env)
    assert proved.exit_code == 0, proved.output
    shown = json.loads(proved.output)
    assert shown["verified"] is True and shown["tree_size"] > signed.checkpoint.size
    when = clock.now().date().isoformat()
    assert shown["content"] == f"content disposed of under ICE-1015-CASE, {when}, by U0REC1"
    with Session(engine) as session:
        newest = checkpoints.read_checkpoints(Path(signing.heads_file), checkpoints.known_keys(
            signing))[-1]
        proof = checkpoints.prove(session, seq, newest)
        assert proof.verified and merkle.verify_inclusion(
            seq - 1, newest.checkpoint.size, bytes.fromhex(proof.leaf),
            [bytes.fromhex(h) for h in proof.path], bytes.fromhex(newest.checkpoint.root))
        assert not merkle.verify_inclusion(
            seq, newest.checkpoint.size, bytes.fromhex(proof.leaf),
            [bytes.fromhex(h) for h in proof.path], bytes.fromhex(newest.checkpoint.root))


def test_no_checkpoint_is_signed_over_a_broken_record(
        walked: Core, engine: Engine, signing: Settings, clock: ManualClock) -> None:
    alter_actor(engine, 2)
    with pytest.raises(CheckpointError, match="entry 2"):
        sign_now(engine, signing, clock)  # the first: everything is verified
    assert not Path(signing.heads_file).exists() or not heads_lines(signing)


@postgres_only  # SQLite's transaction is one snapshot (and holds the write lock here)
def test_incremental_verify_stops_at_the_size_it_started_with(
        walked: Core, engine: Engine, signing: Settings, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries appended while it runs (PostgreSQL reads each statement afresh) are the next
    verification's, not a mismatch between the walk and the tree."""
    signed = sign_now(engine, signing, clock)
    open_case(walked)
    size = size_of(engine)
    walk = record.verify_after

    def appended_meanwhile(*args: Any, **kwargs: Any) -> record.VerifyResult:
        open_case(walked)  # commits more entries before the walk reads them
        return walk(*args, **kwargs)

    monkeypatch.setattr(record, "verify_after", appended_meanwhile)
    with Session(engine) as session:
        result = checkpoints.verify_incremental(session, Vault((TEST_KEY,)),
                                                checkpoints.read_checkpoints(
                                                    Path(signing.heads_file),
                                                    checkpoints.known_keys(signing)))
    assert result.ok, result
    assert (result.size, result.entries) == (size, size - signed.checkpoint.size)
