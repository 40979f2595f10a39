"""Exports that prove themselves: each exported entry's inclusion proof against a checkpoint
signed at export time, the signed manifest, and `verify_export.py` — run as a recipient runs it,
in a virtual environment with nothing installed — naming every kind of tampering."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import venv
from dataclasses import replace
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
from storage import merkle
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


def test_script_consistency_check_agrees_with_the_tree() -> None:
    leaves = [merkle.leaf_hash(bytes([n]) * 32) for n in range(20)]
    builder = merkle.TreeBuilder()
    nodes: dict[merkle.Node, bytes] = {}
    roots = []
    for leaf in leaves:
        nodes.update({(level, idx): h for level, idx, h in builder.add(leaf)})
        roots.append(builder.root())
    for new in range(1, 21):
        for old in range(1, new + 1):
            path = merkle.hashes_of(merkle.consistency_ranges(old, new), nodes)
            assert script.verify_consistency(old, new, roots[old - 1], roots[new - 1], path)
            if old < new:
                assert not script.verify_consistency(old, new, roots[new - 1], roots[new - 1],
                                                     path)


def test_two_checkpoints_that_disagree_fail_the_export(
        signing: Core, clock: ManualClock, tmp_path: Path, bare_python: Path) -> None:
    open_case(signing)
    export(signing, clock, tmp_path / "first")
    open_case(signing, subject_name="Olga Othercase", notice_reference="B-1/2-2025")
    clock.advance(timedelta(hours=1))
    out = tmp_path / "second"
    export(signing, clock, out)
    key = checkpoints.public_text(checkpoints.load_private(signing.settings).public_key())
    good = run_script(bare_python, out, key)
    assert good.returncode == 0, good.stdout
    assert "extends the previous signed checkpoint" in good.stdout
    # Whoever holds the key signs another history for the earlier size, and a new checkpoint
    # naming it (and re-signs the manifest): every signature is good, the trees are not one.
    private = checkpoints.load_private(signing.settings)
    content = json.loads((out / CHECKPOINT_JSON).read_text())
    earlier = checkpoints.parse_text(content["previous"]["checkpoint"])
    current = checkpoints.parse_text(content["checkpoint"])
    assert earlier is not None and current is not None
    forked = checkpoints.sign(private, replace(earlier, root="cd" * 32))
    renamed = checkpoints.sign(private, replace(current, previous=forked.checkpoint.digest()))
    content.update(checkpoint=renamed.checkpoint.text(), signature=renamed.signature,
                   previous={"checkpoint": forked.checkpoint.text(), "key": forked.key,
                             "signature": forked.signature})
    (out / CHECKPOINT_JSON).write_text(json.dumps(content))
    manifest = "".join(
        f"{hashlib.sha256((out / name).read_bytes()).hexdigest()}  {name}\n"
        for name in [line.split("  ", 1)[1] for line in
                     (out / MANIFEST).read_text().splitlines()])
    (out / MANIFEST).write_text(manifest)
    (out / MANIFEST_SIG).write_text(json.dumps({
        "key": renamed.key,
        "signature": base64.b64encode(private.sign(manifest.encode())).decode()}))
    result = run_script(bare_python, out, key)
    assert result.returncode == 1
    assert f"checkpoint {current.size} is not consistent with the previous checkpoint " \
           f"{earlier.size} (two checkpoints that disagree: a fork)" in result.stdout
