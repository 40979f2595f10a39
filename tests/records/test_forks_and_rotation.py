"""Forks between any two checkpoints, also across two publishers' heads files, and rotation of
the checkpoint key by a signed hand-over — each caught by `audit verify` and by
`verify_export.py` where the export carries what it needs."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from bot.clock import ManualClock
from bot.core.service import Core
from bot.records import checkpoints
from bot.records.checkpoints import CheckpointError
from bot.records.export import VERIFY_SCRIPT, export_records
from config.settings import Settings
from handlers.cli import main
from tests.conftest import TEST_KEY
from tests.helpers import open_case, to_approval
from tests.records.test_checkpoints import heads_lines, key_file, sign_now, signing, write_lines
from tests.records.test_proving_export import bare_python

__all__ = ["bare_python", "key_file", "signing"]  # fixtures shared with the other tests


def run_verify(settings: Settings, *args: str) -> Result:
    env = {"NOTICEBOT_DATABASE_URL": settings.database_url, "NOTICEBOT_ENV": "development",
           "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY, "NOTICEBOT_HEADS_FILE": settings.heads_file,
           "NOTICEBOT_CHECKPOINT_KEY_FILE": settings.checkpoint_key_file,
           "NOTICEBOT_CHECKPOINT_PUBLIC_KEYS": ",".join(settings.checkpoint_public_keys)}
    return CliRunner().invoke(main, ["audit", "verify", *args], env=env)


def public(settings: Settings) -> str:
    return checkpoints.public_text(checkpoints.load_private(settings).public_key())


def several(core: Core, settings: Settings, clock: ManualClock, count: int) -> list[
        checkpoints.Signed]:
    signed = []
    for _ in range(count):
        open_case(core)
        clock.advance(timedelta(hours=1))
        signed.append(sign_now(core.engine, settings, clock))
    return signed


def resigned(settings: Settings, chain: list[checkpoints.Checkpoint]) -> list[dict[str, object]]:
    """Heads lines for `chain`, each re-signed by the key and named by the next: what whoever
    holds the key could publish."""
    key = checkpoints.load_private(settings)
    lines: list[dict[str, object]] = []
    previous = "none"
    for checkpoint in chain:
        checkpoint = replace(checkpoint, previous=previous)
        lines.append(json.loads(checkpoints.sign(key, checkpoint).to_line()))
        previous = checkpoint.digest()
    return lines


def script(python: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-I", str(folder / VERIFY_SCRIPT), str(folder), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def export(core: Core, settings: Settings, clock: ManualClock, out: Path) -> Path:
    export_records(engine=core.engine, settings=settings, clock=clock, actor="cli:tester",
                   out_dir=out)
    return out


# --- forks ----------------------------------------------------------------------------------


def test_checkpoints_far_apart_that_disagree_are_a_fork(
        core: Core, signing: Settings, clock: ManualClock) -> None:
    """Checkpoint 1 and checkpoint 4 disagree while each neighbour pair is consistent with the
    chain of signatures: checked against the newest, not only the one before it."""
    to_approval(core, open_case(core))
    chain = [s.checkpoint for s in several(core, signing, clock, 4)]
    assert run_verify(signing).exit_code == 0
    forged = [replace(chain[0], root="ab" * 32), *chain[1:]]
    write_lines(signing, resigned(signing, forged))
    result = run_verify(signing)
    assert result.exit_code == 1
    assert f"checkpoint {chain[3].size} is not consistent with checkpoint {chain[0].size} " \
           "(the heads file, line 1) (two checkpoints disagree: a fork)" in result.output
    full = run_verify(signing, "--full")
    assert full.exit_code == 1 and f"checkpoint {chain[0].size} does not match" in full.output


def test_two_publishers_heads_files_that_disagree_are_a_fork(
        core: Core, signing: Settings, clock: ManualClock, tmp_path: Path) -> None:
    chain = [s.checkpoint for s in several(core, signing, clock, 3)]
    other = tmp_path / "publisher-b.jsonl"
    other.write_text("".join(json.dumps(line) + "\n" for line in heads_lines(signing)[:2]))
    for args in ((), ("--full",)):
        agreed = run_verify(signing, "--heads", str(other), *args)
        assert agreed.exit_code == 0, agreed.output
        assert "OK: 5 checkpoints in 2 heads files agree" in agreed.output
    # Publisher B's copy says another thing at the same size: both are signed, both look fine.
    write_lines_to(other, resigned(signing, [chain[0], replace(chain[1], root="cd" * 32)]))
    for args in ((), ("--full",)):
        forked = run_verify(signing, "--heads", str(other), *args)
        assert forked.exit_code == 1
        assert f"checkpoint {chain[1].size} (" in forked.output and "disagree (a fork)" \
            in forked.output
    # A size publisher A never signed: checked against the record's tree by a consistency proof.
    between = replace(chain[1], size=chain[1].size - 1, root="ef" * 32)
    write_lines_to(other, resigned(signing, [between]))
    result = run_verify(signing, "--heads", str(other))
    assert result.exit_code == 1
    assert f"is not consistent with checkpoint {between.size} ({other}, line 1)" in result.output


def write_lines_to(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_export_checks_published_heads_files_for_forks(
        core: Core, signing: Settings, clock: ManualClock, tmp_path: Path,
        bare_python: Path) -> None:
    chain = [s.checkpoint for s in several(core, signing, clock, 2)]
    folder = export(core, signing, clock, tmp_path / "out")
    heads = Path(signing.heads_file)
    good = script(bare_python, folder, "--public-key", public(signing), "--heads", str(heads))
    assert good.returncode == 0, good.stdout
    assert "PROVED: 3 published checkpoints agree with the export's checkpoint" in good.stdout
    other = tmp_path / "publisher-b.jsonl"
    write_lines_to(other, resigned(signing, [replace(chain[1], root="cd" * 32)]))
    forked = script(bare_python, folder, "--public-key", public(signing), "--heads", str(heads),
                    "--heads", str(other))
    assert forked.returncode == 1
    assert f"FAILED: checkpoint {chain[1].size} (publisher-b.jsonl, line 1) and checkpoint " \
           f"{chain[1].size} (heads.jsonl, line 2) disagree (a fork)" in forked.stdout
    write_lines_to(other, resigned(signing, [replace(chain[0], root="cd" * 32)]))
    alone = script(bare_python, folder, "--public-key", public(signing), "--heads", str(other))
    assert alone.returncode == 1
    assert f"FAILED: checkpoint {chain[0].size} (publisher-b.jsonl, line 1) is not consistent " \
           "with the export's checkpoint" in alone.stdout


# --- key rotation ---------------------------------------------------------------------------


@pytest.fixture
def rotated(core: Core, signing: Settings, clock: ManualClock, tmp_path: Path) -> Settings:
    """Checkpoints under the first key, a hand-over to a second, and the configuration a
    records officer then sets: the new key file, the old public key kept in the keyring."""
    several(core, signing, clock, 2)
    new = Path(signing.checkpoint_key_file).with_name("checkpoint-2.pem")
    checkpoints.generate_key_file(new)
    last, handover, first = checkpoints.hand_over(engine=core.engine, settings=signing,
                                                  clock=clock, new_key_file=new)
    assert (handover.after, first.checkpoint.previous) == (last.checkpoint.digest(),) * 2
    assert first.checkpoint.size == last.checkpoint.size and first.key == handover.new
    return signing.model_copy(update={"checkpoint_key_file": str(new),
                                      "checkpoint_public_keys": (public(signing),)})


def test_rotation_rotated_key_keeps_old_checkpoints_verifiable(
        core: Core, signing: Settings, rotated: Settings, clock: ManualClock) -> None:
    open_case(core)
    clock.advance(timedelta(hours=1))
    newest = sign_now(core.engine, rotated, clock)
    assert newest.key == checkpoints.fingerprint(
        checkpoints.load_private(rotated).public_key())
    keys = {line["key"] for line in heads_lines(rotated) if "checkpoint" in line}
    assert len(keys) == 2
    for args in ((), ("--full",)):
        result = run_verify(rotated, *args)
        assert result.exit_code == 0, result.output
    # The old key can no longer extend the chain once it has handed over (here with a keyring
    # that knows the new key: the key file was not switched).
    with pytest.raises(CheckpointError, match="must be the new key"):
        sign_now(core.engine, signing.model_copy(update={
            "checkpoint_public_keys": (public(rotated),)}), clock)


def test_rotation_a_checkpoint_by_a_key_not_configured_is_refused(
        rotated: Settings) -> None:
    forgotten = rotated.model_copy(update={"checkpoint_public_keys": ()})
    result = run_verify(forgotten)
    assert result.exit_code == 1 and "signed by an unknown key" in result.output
    # The old key's own configuration does not know the new key: the hand-over is refused.
    old_only = rotated.model_copy(update={
        "checkpoint_key_file": "", "checkpoint_public_keys": rotated.checkpoint_public_keys})
    result = run_verify(old_only)
    assert result.exit_code == 1 and "the key hand-over names an unknown key" in result.output


def test_rotation_a_change_of_key_without_a_valid_hand_over_is_refused(rotated: Settings) -> None:
    lines = heads_lines(rotated)
    at = next(n for n, line in enumerate(lines) if "handover" in line)
    write_lines(rotated, [*lines[:at], *lines[at + 1:]])
    result = run_verify(rotated)
    assert result.exit_code == 1 and "no hand-over signed by that key names this one" \
        in result.output
    forged = dict(lines[at])
    forged["handover"] = str(forged["handover"]).replace("time 20", "time 19")
    write_lines(rotated, [*lines[:at], forged, *lines[at + 1:]])
    result = run_verify(rotated)
    assert result.exit_code == 1 and "signature of the key hand-over does not verify" \
        in result.output


def test_rotation_exports_across_a_key_change_verify_standalone(
        core: Core, signing: Settings, clock: ManualClock, tmp_path: Path,
        bare_python: Path) -> None:
    several(core, signing, clock, 1)
    before = export(core, signing, clock, tmp_path / "before")
    old_key = public(signing)
    new = Path(signing.checkpoint_key_file).with_name("checkpoint-2.pem")
    checkpoints.generate_key_file(new)
    checkpoints.hand_over(engine=core.engine, settings=signing, clock=clock, new_key_file=new)
    rotated = signing.model_copy(update={"checkpoint_key_file": str(new),
                                         "checkpoint_public_keys": (old_key,)})
    after = export(core, rotated, clock, tmp_path / "after")
    heads = Path(signing.heads_file)
    assert script(bare_python, before, "--public-key", old_key).returncode == 0
    result = script(bare_python, after, "--public-key", public(rotated), "--public-key", old_key,
                    "--heads", str(heads))
    assert result.returncode == 0, result.stdout
    assert "published checkpoints agree with the export's checkpoint" in result.stdout
    only_new = script(bare_python, after, "--public-key", public(rotated), "--heads", str(heads))
    assert only_new.returncode == 1 and "heads.jsonl line 1: checkpoint" in only_new.stdout
    assert "is signed by an unknown key" in only_new.stdout
    lines = [line for line in heads_lines(signing) if "handover" not in line]
    write_lines(signing, lines)
    missing = script(bare_python, after, "--public-key", public(rotated), "--public-key",
                     old_key, "--heads", str(heads))
    assert missing.returncode == 1 and "with no hand-over to it" in missing.stdout


def test_hand_over_through_the_command_line(
        core: Core, signing: Settings, clock: ManualClock, engine: Engine) -> None:
    several(core, signing, clock, 1)
    new = Path(signing.checkpoint_key_file).with_name("checkpoint-2.pem")
    checkpoints.generate_key_file(new)
    env = {"NOTICEBOT_DATABASE_URL": signing.database_url, "NOTICEBOT_ENV": "development",
           "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY, "NOTICEBOT_HEADS_FILE": signing.heads_file,
           "NOTICEBOT_CHECKPOINT_KEY_FILE": signing.checkpoint_key_file}
    result = CliRunner().invoke(main, ["keys", "checkpoint-key", "hand-over", "--to", str(new)],
                                env=env)
    assert result.exit_code == 0, result.output
    assert "handed over to" in result.output and "NOTICEBOT_CHECKPOINT_PUBLIC_KEYS" \
        in result.output
    assert [("handover" in line, "checkpoint" in line) for line in heads_lines(signing)] == [
        (False, True), (False, True), (True, False), (False, True)]
