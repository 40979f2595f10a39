#!/usr/bin/env python3
"""Check a noticebot record export on its own: Python 3.11+ and its standard library only.

    python3 verify_export.py FOLDER --public-key ed25519:BASE64 [--public-key …] [--heads FILE …]

It checks, and prints what it proved:
  - the checkpoint (tree size, Merkle root, time) is signed by a given public key (Ed25519);
    the checkpoint before it, by the same key or by the key that handed over to it (a signed
    hand-over naming both keys and that checkpoint);
  - the export's manifest is signed by the same key, and every file matches the manifest;
  - every exported entry's hash matches its fields, its payload matches its digest (unless the
    payload was redacted or disposed of, which it says), consecutive entries chain;
  - every entry's inclusion proof leads to the signed root (RFC 9162 Merkle tree hashing);
  - with --heads (published heads files, one or several publishers'): their checkpoints are
    signed by a given key and agree with each other and the export's (two that disagree: a fork).
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
from dataclasses import dataclass, field
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
HANDOVER = "noticebot checkpoint key handover v1"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fields(text: str, header: str, names: tuple[str, ...]) -> dict[str, str] | None:
    """A signed text's named lines ("name value"), or None if it is not exactly that."""
    lines = text.split("\n")
    found = dict(line.partition(" ")[::2] for line in lines[1:-1])
    if lines[0] != header or lines[-1] or tuple(found) != names or not all(found.values()):
        return None
    return found


def _checkpoint(text: str) -> dict[str, str] | None:
    found = _fields(text, HEADER, ("size", "root", "head", "time", "previous"))
    return found if found and found["size"].isdigit() else None


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    proved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.failures.append(text)


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:  # binascii.Error is one
        return b""


def _public_key(text: str) -> bytes:
    if len(raw := _b64(text.strip().removeprefix("ed25519:"))) != 32:
        raise ValueError("not 32 bytes")
    return raw


def verify(folder: Path, public: bytes | list[bytes], heads: list[Path] | None = None) -> Report:
    report = Report()
    keys = {hashlib.sha256(raw).hexdigest(): raw
            for raw in ([public] if isinstance(public, bytes) else public)}
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
    if key not in keys:
        report.fail(f"the checkpoint is signed by key {str(key)[:16]}…, not by the public key "
                    f"given ({', '.join(k[:16] + '…' for k in keys)})")
        return report
    public = keys[key]
    if not ed25519_verify(public, text.encode("utf-8"), signature):
        report.fail("the checkpoint's signature does not verify (forged or altered)")
        return report
    size, root = int(checkpoint["size"]), bytes.fromhex(checkpoint["root"])
    report.proved.append(f"checkpoint signed by key {key}: tree size {size}, "
                         f"root {checkpoint['root']}, signed {checkpoint['time']}")
    if "previous" in signed:
        _previous(signed, checkpoint, keys, key, report)
    if heads:
        _heads(heads, keys, signed, checkpoint, report)
    listed = _manifest(folder, public, report)
    if listed is None:
        return report
    _entries(folder, size, root, report)
    return report


def _previous(signed: dict[str, Any], checkpoint: dict[str, str], keys: dict[str, bytes],
              fingerprint: str, report: Report) -> None:
    """The checkpoint before this one: signed (by this key, or by the key that handed over to
    it), named by it, and its tree a prefix of this one."""
    try:
        before, path = signed["previous"], [bytes.fromhex(h) for h in signed["consistency"]]
        text, old_key, signature = before["checkpoint"], before["key"], _b64(before["signature"])
        old = _checkpoint(text)
    except (KeyError, TypeError, ValueError, binascii.Error, AttributeError):
        old = None
    if old is None:
        report.fail("checkpoint.json: the previous checkpoint is not well-formed")
        return
    if old_key != fingerprint:
        problem = _handover(signed.get("handover"), keys, str(old_key), fingerprint,
                            _sha256(text))
        if problem:
            report.fail(f"the previous checkpoint is signed by key {str(old_key)[:16]}…: "
                        f"{problem}")
            return
        report.proved.append(f"key {str(old_key)[:16]}… handed over to key {fingerprint[:16]}… "
                             f"after checkpoint {old['size']} (signed hand-over)")
    if not ed25519_verify(keys[str(old_key)], text.encode(), signature):
        report.fail("the previous checkpoint is not signed by its key")
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


def _handover(value: Any, keys: dict[str, bytes], old: str, new: str, after: str) -> str | None:
    """Why no hand-over from key `old` to `new` after checkpoint digest `after` holds, or None."""
    if old not in keys:
        return "a key not given (add it with another --public-key)"
    if not isinstance(value, dict) or not isinstance(value.get("handover"), str):
        return "another key, and no hand-over from it is given"
    text = value["handover"]
    fields = _fields(text, HANDOVER, ("from", "to", "public", "after", "time"))
    if fields is None:
        return "the key hand-over is not well-formed"
    if not ed25519_verify(keys[old], text.encode("utf-8"), _b64(value.get("signature"))):
        return "the key hand-over is not signed by the outgoing key (forged or altered)"
    if (fields["from"], fields["to"], fields["after"]) != (old, new, after):
        return "the key hand-over names other keys or another checkpoint"
    return None


def _heads(paths: list[Path], keys: dict[str, bytes], signed: dict[str, Any],
           checkpoint: dict[str, str], report: Report) -> None:
    """Heads files' checkpoints: signed, chained, and one history with the export's."""
    size, root = int(checkpoint["size"]), bytes.fromhex(checkpoint["root"])
    by_size: dict[int, tuple[str, str]] = {size: ("the export's checkpoint", checkpoint["root"])}
    proofs = signed.get("consistency_from", {})
    checked = unchecked = 0
    for path in paths:
        for line, point in _read_heads(path, keys, report):
            where, n = f"checkpoint {point['size']} ({path.name}, line {line})", int(point["size"])
            seen = by_size.setdefault(n, (where, point["root"]))
            proof = proofs.get(str(n)) if isinstance(proofs, dict) and n < size else None
            if seen[1] != point["root"]:
                report.fail(f"{where} and {seen[0]} disagree (a fork)")
            elif proof is not None and not verify_consistency(
                    n, size, bytes.fromhex(point["root"]), root, [bytes.fromhex(h) for h in proof]):
                report.fail(f"{where} is not consistent with the export's checkpoint {size} "
                            "(two checkpoints that disagree: a fork)")
            elif n == size or proof is not None:
                checked += 1
            else:
                unchecked += 1
    report.proved.append(f"{checked} published checkpoints agree with the export's checkpoint "
                         f"(same root, or a prefix of its tree)")
    if unchecked:
        report.notes.append(f"{unchecked} published checkpoints are newer than the export or "
                            "have no consistency proof in it: not checked against it")


def _read_heads(path: Path, keys: dict[str, bytes], report: Report) -> list[tuple[int, dict[
        str, str]]]:
    found: list[tuple[int, dict[str, str]]] = []
    last = {"key": "", "digest": "none", "to": ""}  # the last checkpoint's key, a hand-over's
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        report.fail(f"{path.name} is unreadable ({exc})")
        return found
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        problem = _head_line(value, keys, last, number, found)
        if problem:
            report.fail(f"{path.name} line {number}: {problem}")
            break
    return found


def _head_line(value: Any, keys: dict[str, bytes], last: dict[str, str], number: int,
               found: list[tuple[int, dict[str, str]]]) -> str | None:
    if isinstance(value, dict) and "handover" in value:
        to = dict(row.partition(" ")[::2] for row in str(value["handover"]).split("\n")[1:6])
        last["to"] = to.get("to", "")
        return _handover(value, keys, last["key"], last["to"], last["digest"])
    text = value.get("checkpoint") if isinstance(value, dict) else None
    point = _checkpoint(text) if isinstance(text, str) else None
    if point is None or not isinstance(text, str) or not isinstance(value, dict):
        return "not a signed checkpoint (an unsigned head is not accepted)"
    key, signature = str(value.get("key")), _b64(value.get("signature"))
    if key not in keys:
        return f"checkpoint {point['size']} is signed by an unknown key {key[:16]}…"
    if not ed25519_verify(keys[key], text.encode("utf-8"), signature):
        return f"the signature of checkpoint {point['size']} does not verify (forged or altered)"
    if point["previous"] != last["digest"]:
        return (f"checkpoint {point['size']} does not follow the checkpoint before it (one was "
                "removed, reordered or forked)")
    if last["key"] and key not in (last["key"], last["to"]):
        return (f"checkpoint {point['size']} is signed by another key than the one before it, "
                "with no hand-over to it")
    found.append((number, point))
    last.update(key=key, digest=_sha256(text), to="")
    return None


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
    listed = {name: digest for digest, _, name in (
        line.partition("  ") for line in manifest.decode("utf-8").splitlines())}
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
                            f"checkable): entries {', '.join(map(str, redacted[:50]))}"
                            + (" …" if len(redacted) > 50 else ""))
    report.notes.extend(disposed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--public-key", action="append", default=[],
                        help="the records office's checkpoint public key (ed25519:BASE64); "
                             "repeat it for the keys used before a hand-over")
    parser.add_argument("--heads", type=Path, action="append", default=[],
                        help="a published heads file to check against the export (repeatable: "
                             "several publishers' copies)")
    args = parser.parse_args(argv)
    try:
        keys = [_public_key(text) for text in args.public_key] or [_public_key("")]
    except (ValueError, binascii.Error):
        print("--public-key is not an Ed25519 public key (ed25519:<base64 of 32 bytes>)")
        return 2
    report = verify(args.folder, keys, args.heads)
    for label, lines in (("PROVED", report.proved), ("NOTE", report.notes),
                         ("FAILED", report.failures)):
        print("".join(f"{label}: {line}\n" for line in lines), end="")
    print("RESULT: " + ("verified" if not report.failures else
                        f"NOT verified ({len(report.failures)} problems)"))
    return 0 if not report.failures else 1


if __name__ == "__main__":
    sys.exit(main())
