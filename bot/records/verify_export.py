#!/usr/bin/env python3
"""Check a noticebot record export on its own: Python 3.11+ and its standard library only.

    python3 verify_export.py EXPORT_FOLDER --public-key ed25519:BASE64

It checks, and prints what it proved:
  - the checkpoint (tree size, Merkle root, time) is signed by the given public key (Ed25519);
  - the export's manifest is signed by the same key, and every file matches the manifest;
  - every exported entry's hash matches its fields, its payload matches its digest (unless the
    payload was redacted or disposed of, which it says), consecutive entries chain;
  - every entry's inclusion proof leads to the signed root (RFC 9162 Merkle tree hashing).
Exit status 0 when everything verified, 1 otherwise (each failure is named).

The Ed25519 verification below follows RFC 8032 §5.1.7 (written for this script; it verifies
public data only, so it need not be constant-time).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

# --- Ed25519 (RFC 8032 §5.1) -----------------------------------------------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z


def _add(a: Point, b: Point) -> Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    pa = (y1 - x1) * (y2 - x2) % _P
    pb = (y1 + x1) * (y2 + x2) % _P
    pc = t1 * 2 * _D * t2 % _P
    pd = z1 * 2 * z2 % _P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)  # the neutral element
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _same(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if x & 1 != sign else x


def _decode(data: bytes) -> Point | None:
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_BY = 4 * pow(5, _P - 2, _P) % _P
_BASE: Point = (_recover_x(_BY, 0) or 0, _BY, 1, (_recover_x(_BY, 0) or 0) * _BY % _P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decode(public), _decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    return _same(_multiply(s, _BASE), _add(r, _multiply(h, a)))


# --- Merkle tree (RFC 9162 §2.1) -------------------------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       path: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: the tree of `old` leaves is a prefix of the tree of `new`."""
    if not 0 < old <= new:
        return False
    if old == new:
        return not path and old_root == new_root
    proof = ([old_root] if old & (old - 1) == 0 else []) + list(path)
    if not proof:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


# --- the export ------------------------------------------------------------------------------

HEADER = "noticebot record checkpoint v1"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checkpoint(text: str) -> dict[str, str] | None:
    lines = text.split("\n")
    if len(lines) != 7 or lines[0] != HEADER or lines[6]:
        return None
    found = {}
    for name, line in zip(("size", "root", "head", "time", "previous"), lines[1:6], strict=True):
        label, _, value = line.partition(" ")
        if label != name or not value:
            return None
        found[name] = value
    return found if found["size"].isdigit() else None


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.proved: list[str] = []
        self.notes: list[str] = []

    def fail(self, text: str) -> None:
        self.failures.append(text)


def _public_key(text: str) -> bytes:
    raw = base64.b64decode(text.strip().removeprefix("ed25519:"), validate=True)
    if len(raw) != 32:
        raise ValueError("not 32 bytes")
    return raw


def verify(folder: Path, public: bytes) -> Report:
    report = Report()
    fingerprint = hashlib.sha256(public).hexdigest()
    try:
        signed = json.loads((folder / "checkpoint.json").read_text("utf-8"))
        text, key = signed["checkpoint"], signed["key"]
        signature = base64.b64decode(signed["signature"], validate=True)
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        report.fail(f"checkpoint.json is missing or unreadable ({exc})")
        return report
    checkpoint = _checkpoint(text) if isinstance(text, str) else None
    if checkpoint is None:
        report.fail("checkpoint.json does not hold a well-formed checkpoint")
        return report
    if key != fingerprint:
        report.fail(f"the checkpoint is signed by key {str(key)[:16]}…, not by the public key "
                    f"given ({fingerprint[:16]}…)")
        return report
    if not ed25519_verify(public, text.encode("utf-8"), signature):
        report.fail("the checkpoint's signature does not verify (forged or altered)")
        return report
    size, root = int(checkpoint["size"]), bytes.fromhex(checkpoint["root"])
    report.proved.append(f"checkpoint signed by key {fingerprint}: tree size {size}, "
                         f"root {checkpoint['root']}, signed {checkpoint['time']}")
    if "previous" in signed:
        _previous(signed, checkpoint, public, fingerprint, report)
    listed = _manifest(folder, public, report)
    if listed is None:
        return report
    _entries(folder, size, root, report)
    return report


def _previous(signed: dict[str, Any], checkpoint: dict[str, str], public: bytes,
              fingerprint: str, report: Report) -> None:
    """The checkpoint before this one: signed, named by it, and its tree a prefix of this one."""
    try:
        before = signed["previous"]
        text = before["checkpoint"]
        old = _checkpoint(text)
        signature = base64.b64decode(before["signature"], validate=True)
        path = [bytes.fromhex(h) for h in signed.get("consistency", [])]
    except (KeyError, TypeError, ValueError, binascii.Error):
        report.fail("checkpoint.json: the previous checkpoint is not well-formed")
        return
    if old is None:
        report.fail("checkpoint.json: the previous checkpoint is not well-formed")
    elif before.get("key") != fingerprint or not ed25519_verify(public, text.encode(), signature):
        report.fail("the previous checkpoint is not signed by this key")
    elif _sha256(text) != checkpoint["previous"]:
        report.fail("the checkpoint does not name the previous checkpoint given")
    elif not verify_consistency(int(old["size"]), int(checkpoint["size"]),
                                bytes.fromhex(old["root"]), bytes.fromhex(checkpoint["root"]),
                                path):
        report.fail(f"checkpoint {checkpoint['size']} is not consistent with the previous "
                    f"checkpoint {old['size']} (two checkpoints that disagree: a fork)")
    else:
        report.proved.append(f"the tree of {checkpoint['size']} entries extends the previous "
                             f"signed checkpoint of {old['size']} (consistency proof)")


def _manifest(folder: Path, public: bytes, report: Report) -> dict[str, str] | None:
    try:
        manifest = (folder / "manifest.sha256").read_bytes()
        seal = json.loads((folder / "manifest.sig").read_text("utf-8"))
        signature = base64.b64decode(seal["signature"], validate=True)
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        report.fail(f"manifest.sha256 or manifest.sig is missing or unreadable ({exc})")
        return None
    if not ed25519_verify(public, manifest, signature):
        report.fail("manifest.sha256 is not signed by this key (files added, removed or "
                    "altered after the export)")
        return None
    listed: dict[str, str] = {}
    for line in manifest.decode("utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    for name, digest in listed.items():
        path = folder / name
        if "/" in name or not path.is_file():
            report.fail(f"{name} is missing (truncated export?)")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            report.fail(f"{name} does not match the signed manifest (altered or truncated)")
    for path in sorted(folder.iterdir()):
        if path.name not in listed and path.name not in ("manifest.sha256", "manifest.sig"):
            report.notes.append(f"{path.name} is not in the manifest (not checked)")
    if not report.failures:
        report.proved.append(f"manifest signed by the same key; {len(listed)} files match it")
    return listed


def _entries(folder: Path, size: int, root: bytes, report: Report) -> None:
    proofs: dict[int, dict[str, Any]] = {}
    try:
        for line in (folder / "proofs.jsonl").read_text("utf-8").splitlines():
            if line.strip():
                proof = json.loads(line)
                proofs[int(proof["seq"])] = proof
        rows = [json.loads(line) for line in
                (folder / "entries.jsonl").read_text("utf-8").splitlines() if line.strip()]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.fail(f"entries.jsonl or proofs.jsonl is unreadable ({exc})")
        return
    proven, redacted, disposed = 0, [], []
    previous: dict[str, Any] | None = None
    for row in rows:
        seq = row.get("seq")
        where = f"entry {seq}"
        material = [row.get("prev_hash"), seq, row.get("at"), row.get("actor"), row.get("kind"),
                    row.get("action"), row.get("case_id"), row.get("payload_digest")]
        if _sha256(_canonical(material)) != row.get("hash"):
            report.fail(f"{where}: its hash does not match its fields (altered)")
            continue
        if previous is not None and previous.get("seq") == seq - 1 \
                and row.get("prev_hash") != previous.get("hash"):
            report.fail(f"{where}: does not chain to entry {seq - 1}")
        previous = row
        proof = proofs.get(seq)
        if proof is None:
            report.fail(f"{where}: has no inclusion proof")
            continue
        payload = row.get("payload")
        if proof.get("disposed"):
            if payload is not None:
                report.fail(f"{where}: marked disposed of, yet has a payload")
            disposed.append(f"entry {seq}: {proof['disposed']}")
        elif proof.get("redacted"):
            redacted.append(seq)
        elif payload is None or _sha256(_canonical(payload)) != row.get("payload_digest"):
            report.fail(f"{where}: payload does not match its digest (altered or swapped)")
            continue
        leaf = hashlib.sha256(b"\x00" + bytes.fromhex(row["hash"])).digest()
        try:
            path = [bytes.fromhex(h) for h in proof["path"]]
            ok = int(proof["tree_size"]) == size and verify_inclusion(
                seq - 1, size, leaf, path, root)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            report.fail(f"{where}: its inclusion proof does not lead to the signed root")
            continue
        proven += 1
    extra = set(proofs) - {row.get("seq") for row in rows}
    if extra:
        report.fail(f"proofs.jsonl has proofs for entries not in entries.jsonl: "
                    f"{sorted(extra)[:10]} (truncated export?)")
    report.proved.append(f"{proven} of {len(rows)} entries are in the signed tree of {size} "
                         "entries (hash, chain and inclusion proof)")
    if redacted:
        report.notes.append(f"payloads redacted for sharing (metadata proven, content not "
                            f"checkable): entries {_ranges(redacted)}")
    for line in disposed:
        report.notes.append(line)


def _ranges(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers[:50]) + (" …" if len(numbers) > 50 else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--public-key", required=True,
                        help="the records office's checkpoint public key (ed25519:BASE64)")
    args = parser.parse_args(argv)
    try:
        public = _public_key(args.public_key)
    except (ValueError, binascii.Error):
        print("--public-key is not an Ed25519 public key (ed25519:<base64 of 32 bytes>)")
        return 2
    report = verify(args.folder, public)
    for line in report.proved:
        print(f"PROVED: {line}")
    for line in report.notes:
        print(f"NOTE: {line}")
    for line in report.failures:
        print(f"FAILED: {line}")
    print("RESULT: " + ("verified" if not report.failures else
                        f"NOT verified ({len(report.failures)} problems)"))
    return 0 if not report.failures else 1


if __name__ == "__main__":
    sys.exit(main())
