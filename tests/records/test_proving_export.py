"""Exports that prove themselves: each exported entry's inclusion proof against a checkpoint
signed at export time, the signed manifest, and `verify_export.py` — run as a recipient runs it,
in a virtual environment with nothing installed — naming every kind of tampering."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.clock import ManualClock
from bot.core.service import Core
from bot.messages import ActionId
from bot.records import checkpoints
from bot.records import verify_export as script
from bot.records.disposition import dispose
from bot.records.export import (
    CHECKPOINT_JSON,
    MANIFEST,
    MANIFEST_SIG,
    PROOFS_JSONL,
    VERIFY_SCRIPT,
    ExportReport,
    export_records,
)
from bot.records.retention import load_schedule
from config.settings import Settings
from tests.helpers import OFFICER, open_case, press, to_approval
from tests.records.test_disposition import SCHEDULE, as_records


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with nothing installed: only the standard library is importable."""
    home = tmp_path_factory.mktemp("bare-venv")
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(home)
    return home / "bin" / "python"


@pytest.fixture
def signing(core: Core, tmp_path: Path) -> Core:
    key = tmp_path / "checkpoint.pem"
    checkpoints.generate_key_file(key)
    schedule = tmp_path / "retention.toml"
    schedule.write_text(SCHEDULE, encoding="utf-8")
    core.settings = core.settings.model_copy(update={
        "checkpoint_key_file": str(key), "heads_file": str(tmp_path / "heads.jsonl"),
        "retention_file": str(schedule)})
    return core


def public_key(settings: Settings) -> str:
    return checkpoints.public_text(checkpoints.load_private(settings).public_key())


def export(core: Core, clock: ManualClock, out: Path, **options: object) -> ExportReport:
    return export_records(engine=core.engine, settings=core.settings, clock=clock,
                          actor="cli:tester", out_dir=out, **options)  # type: ignore[arg-type]


def run_script(python: Path, out: Path, key: str) -> subprocess.CompletedProcess[str]:
    """The copy inside the export, as a recipient runs it."""
    return subprocess.run([str(python), "-I", str(out / VERIFY_SCRIPT), str(out),
                           "--public-key", key], capture_output=True, text=True, timeout=120,
                          check=False)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def write_lines(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")


@pytest.fixture
def exported(signing: Core, clock: ManualClock, tmp_path: Path) -> Path:
    case_id = open_case(signing)
    to_approval(signing, case_id)
    open_case(signing, subject_name="Olga Othercase", notice_reference="B-1/2-2025")
    report = export(signing, clock, tmp_path / "out")
    assert report.checkpoint_size is not None and report.entries == report.checkpoint_size
    return tmp_path / "out"


def test_pure_python_ed25519_agrees_with_cryptography() -> None:
    for n in range(8):
        key = Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        message = f"checkpoint {n}".encode() * (n + 1)
        signature = key.sign(message)
        assert script.ed25519_verify(raw, message, signature)
        assert not script.ed25519_verify(raw, message + b".", signature)
        flipped = bytes([signature[0] ^ 1]) + signature[1:]
        assert not script.ed25519_verify(raw, message, flipped)
        other = Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert not script.ed25519_verify(other, message, signature)


def test_a_signed_export_verifies_standalone(exported: Path, signing: Core,
                                             bare_python: Path) -> None:
    assert {PROOFS_JSONL, CHECKPOINT_JSON, VERIFY_SCRIPT, MANIFEST_SIG} <= {
        p.name for p in exported.iterdir()}
    # The interpreter really has nothing but the standard library.
    probe = subprocess.run([str(bare_python), "-I", "-c", "import cryptography"],
                           capture_output=True, text=True, check=False)
    assert probe.returncode != 0
    result = run_script(bare_python, exported, public_key(signing.settings))
    assert result.returncode == 0, result.stdout + result.stderr
    entries = len((exported / "entries.jsonl").read_text().splitlines())
    assert f"PROVED: {entries} of {entries} entries are in the signed tree" in result.stdout
    assert "PROVED: checkpoint signed by key" in result.stdout
    assert result.stdout.rstrip().endswith("RESULT: verified")


def test_an_unknown_key_and_a_forged_checkpoint_fail(exported: Path, bare_python: Path) -> None:
    stranger = checkpoints.public_text(Ed25519PrivateKey.generate().public_key())
    result = run_script(bare_python, exported, stranger)
    assert result.returncode == 1 and "not by the public key given" in result.stdout


def test_forged_checkpoint_fails(exported: Path, signing: Core, bare_python: Path) -> None:
    signed = json.loads((exported / CHECKPOINT_JSON).read_text())
    text = str(signed["checkpoint"])
    root = text.split("\nroot ")[1][:64]
    signed["checkpoint"] = text.replace(root, "0" * 64)
    (exported / CHECKPOINT_JSON).write_text(json.dumps(signed))
    result = run_script(bare_python, exported, public_key(signing.settings))
    assert result.returncode == 1
    assert "FAILED: the checkpoint's signature does not verify" in result.stdout


def test_truncated_export_fails(exported: Path, signing: Core, bare_python: Path) -> None:
    entries = exported / "entries.jsonl"
    entries.write_text("".join(entries.read_text().splitlines(keepends=True)[:-1]))
    result = run_script(bare_python, exported, public_key(signing.settings))
    assert result.returncode == 1
    assert "entries.jsonl does not match the signed manifest" in result.stdout
    assert "proofs for entries not in entries.jsonl" in result.stdout


def test_payload_swapped_between_two_entries_fails(exported: Path, signing: Core,
                                                   bare_python: Path) -> None:
    path = exported / "entries.jsonl"
    rows = lines(path)
    first, second = [n for n, row in enumerate(rows) if row["payload"] not in ({}, None)][:2]
    swapped = rows[second]["payload"], rows[first]["payload"]
    rows[first]["payload"], rows[second]["payload"] = swapped
    write_lines(path, rows)
    result = run_script(bare_python, exported, public_key(signing.settings))
    assert result.returncode == 1
    for n in (first, second):
        assert f"entry {rows[n]['seq']}: payload does not match its digest" in result.stdout


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_altered_entry_or_proof_fails(exported: Path, signing: Core, bare_python: Path,
                                      position: str) -> None:
    path = exported / "entries.jsonl"
    rows = lines(path)
    n = {"first": 0, "middle": len(rows) // 2, "last": len(rows) - 1}[position]
    rows[n]["actor"] = "U0EVIL"
    write_lines(path, rows)
    proofs = lines(exported / PROOFS_JSONL)
    other = (n + 1) % len(proofs)
    proofs[other]["path"] = list(reversed(proofs[other]["path"]))  # type: ignore[call-overload]
    write_lines(exported / PROOFS_JSONL, proofs)
    result = run_script(bare_python, exported, public_key(signing.settings))
    assert result.returncode == 1
    assert f"entry {rows[n]['seq']}: its hash does not match its fields" in result.stdout
    if len(proofs[other]["path"]) > 1:  # type: ignore[arg-type]
        assert f"entry {rows[other]['seq']}: its inclusion proof does not lead" in result.stdout


def test_redacted_export_proves_metadata_and_names_redacted_payloads(
        signing: Core, clock: ManualClock, tmp_path: Path, bare_python: Path) -> None:
    case_id = open_case(signing)
    to_approval(signing, case_id)
    export(signing, clock, tmp_path / "red", redact=True)
    result = run_script(bare_python, tmp_path / "red", public_key(signing.settings))
    assert result.returncode == 0, result.stdout
    assert "NOTE: payloads redacted for sharing" in result.stdout


def test_o32_disposed_entry_keeps_its_proof_and_says_under_what(
        signing: Core, clock: ManualClock, tmp_path: Path, bare_python: Path) -> None:
    case_id = open_case(signing)
    assert press(signing, OFFICER, case_id, ActionId.withdraw, {"reason": "test"}).ok
    clock.advance(timedelta(days=365 * 10 + 3))
    schedule = load_schedule(signing.settings.retention_file)
    assert as_records(signing, lambda ctx: dispose(ctx, schedule, [case_id])).ok
    report = export(signing, clock, tmp_path / "case", case_id=case_id)
    assert report.entries > 0
    result = run_script(bare_python, tmp_path / "case", public_key(signing.settings))
    assert result.returncode == 0, result.stdout
    assert f"PROVED: {report.entries} of {report.entries} entries" in result.stdout
    when = clock.now().date().isoformat()
    assert f"content disposed of under ICE-1015-CASE, {when}, by U0REC1" in result.stdout
    # A disposed entry's payload put back (or made up) is refused.
    rows = lines(tmp_path / "case" / "entries.jsonl")
    rows[0]["payload"] = {"made": "up"}
    write_lines(tmp_path / "case" / "entries.jsonl", rows)
    again = run_script(bare_python, tmp_path / "case", public_key(signing.settings))
    assert again.returncode == 1 and "marked disposed of, yet has a payload" in again.stdout


def test_the_script_needs_no_install(bare_python: Path) -> None:
    source = Path(script.__file__).read_text("utf-8")
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.startswith(("import ", "from "))}
    assert imports <= set(sys.stdlib_module_names) | {"__future__"}
    assert MANIFEST
