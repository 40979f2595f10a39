"""What is signed, and by whom: the checkpoint signing key (Ed25519, kept outside the
database), the public keys verification accepts, the hand-over from one key to the next, the
checkpoint's text and the heads file's signed lines (format: `bot.records.checkpoints`).

A key is rotated by a hand-over: a statement signed by the outgoing key that names the incoming
key and the last checkpoint the outgoing key signed. It is appended to the heads file between
that checkpoint and the first one under the new key, so the chain of checkpoints stays one
chain and nobody holding only the new key can claim an older history. Verification accepts a
change of key only through such a statement, and only to a key it knows (configured): a stolen
old key cannot hand the record over to a key the records office never published.

The signed hand-over text (UTF-8, every line ends with a newline):

    noticebot checkpoint key handover v1
    from <fingerprint of the outgoing key>
    to <fingerprint of the incoming key>
    public <the incoming public key, ed25519:BASE64>
    after <SHA-256 hex of the last checkpoint signed by the outgoing key>
    time <ISO 8601 time of signing>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from config.settings import Settings

HEADER = "noticebot record checkpoint v1"
PUBLIC_PREFIX = "ed25519:"
HANDOVER_HEADER = "noticebot checkpoint key handover v1"


class CheckpointError(Exception):
    """No checkpoint can be made or read (no key, a bad heads file, a record that fails)."""


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode("ascii")


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def parse_public(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip().removeprefix(PUBLIC_PREFIX), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"not an Ed25519 public key ({PUBLIC_PREFIX}<base64 of 32 "
                              f"bytes>): {text[:60]!r}") from None


def generate_key_file(path: Path) -> Ed25519PublicKey:
    """Write a new private key (PEM, readable by its owner only); never overwrites one."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CheckpointError(f"{path} exists; a checkpoint key is never overwritten") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return key.public_key()


def load_private(settings: Settings, path: str | Path | None = None) -> Ed25519PrivateKey:
    """The private key in `path`, by default NOTICEBOT_CHECKPOINT_KEY_FILE."""
    source = str(path) if path is not None else settings.checkpoint_key_file
    if not source:
        raise CheckpointError("NOTICEBOT_CHECKPOINT_KEY_FILE is not set (make one with "
                              "`noticebot keys checkpoint-key generate --out FILE`)")
    try:
        key = serialization.load_pem_private_key(Path(source).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read the checkpoint key {source}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{source} is not an Ed25519 key")
    return key


def known_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    """Fingerprint → public key of every key whose checkpoints verification accepts: the
    keyring (NOTICEBOT_CHECKPOINT_PUBLIC_KEYS, e.g. every key used since the first checkpoint)
    and the key file's own."""
    keys = [parse_public(text) for text in settings.checkpoint_public_keys]
    if settings.checkpoint_key_file and Path(settings.checkpoint_key_file).is_file():
        keys.append(load_private(settings).public_key())
    return {fingerprint(key): key for key in keys}


# --- hand-over ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handover:
    """The outgoing key's signed statement that the incoming key continues after `after`."""

    old: str  # fingerprints
    new: str
    public: str  # the incoming key, ed25519:BASE64
    after: str  # digest of the last checkpoint under the outgoing key
    time: str
    signature: str = ""  # base64, by the outgoing key

    def text(self) -> str:
        return (f"{HANDOVER_HEADER}\nfrom {self.old}\nto {self.new}\npublic {self.public}\n"
                f"after {self.after}\ntime {self.time}\n")

    def to_json(self) -> dict[str, str]:
        return {"handover": self.text(), "key": self.old, "signature": self.signature}

    def to_line(self) -> str:
        return json.dumps(self.to_json())


def sign_handover(old: Ed25519PrivateKey, new: Ed25519PublicKey, after: str,
                  time: str) -> Handover:
    unsigned = Handover(old=fingerprint(old.public_key()), new=fingerprint(new),
                        public=public_text(new), after=after, time=time)
    signature = base64.b64encode(old.sign(unsigned.text().encode("utf-8"))).decode("ascii")
    return Handover(unsigned.old, unsigned.new, unsigned.public, after, time, signature)


def parse_handover(value: dict[str, Any], keys: dict[str, Ed25519PublicKey],
                   where: str) -> Handover:
    """A hand-over line, its text well-formed and signed by the outgoing key (which must be
    known); CheckpointError names what fails."""
    text, key, signature = value.get("handover"), value.get("key"), value.get("signature")
    fields: dict[str, str] = {}
    if isinstance(text, str):
        lines = text.split("\n")
        if len(lines) == 7 and lines[0] == HANDOVER_HEADER and lines[6] == "":
            for name, line in zip(("from", "to", "public", "after", "time"), lines[1:6],
                                  strict=True):
                label, _, field = line.partition(" ")
                if label == name and field:
                    fields[name] = field
    if len(fields) != 5 or not isinstance(key, str) or not isinstance(signature, str) \
            or key != fields["from"]:
        raise CheckpointError(f"{where}: not a well-formed key hand-over")
    handover = Handover(old=fields["from"], new=fields["to"], public=fields["public"],
                        after=fields["after"], time=fields["time"], signature=signature)
    if handover.text() != text:
        raise CheckpointError(f"{where}: not a well-formed key hand-over")
    public = keys.get(handover.old)
    if public is None:
        raise CheckpointError(f"{where}: a key hand-over signed by an unknown key "
                              f"{handover.old[:16]}…")
    try:
        public.verify(base64.b64decode(signature, validate=True), text.encode("utf-8"))
    except (InvalidSignature, binascii.Error, ValueError):
        raise CheckpointError(f"{where}: the signature of the key hand-over does not verify "
                              "(forged or altered)") from None
    if fingerprint(parse_public(handover.public)) != handover.new:
        raise CheckpointError(f"{where}: the key hand-over's public key is not the key it "
                              "names")
    return handover


# --- checkpoints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: str  # hex
    head: str  # hash of entry `size`
    time: str
    previous: str  # SHA-256 hex of the previous checkpoint's text, or "none"

    def text(self) -> str:
        return (f"{HEADER}\nsize {self.size}\nroot {self.root}\nhead {self.head}\n"
                f"time {self.time}\nprevious {self.previous}\n")

    def digest(self) -> str:
        return hashlib.sha256(self.text().encode("utf-8")).hexdigest()

    def short(self) -> str:
        return f"checkpoint {self.size} {self.root[:16]}… {self.time}"


@dataclass(frozen=True)
class Signed:
    checkpoint: Checkpoint
    key: str  # fingerprint
    signature: str  # base64
    line: int = 0  # in the heads file, when read from one
    # The outgoing key's hand-over to this checkpoint's key, when the key changed here.
    handover: Handover | None = None

    def to_line(self) -> str:
        return json.dumps({"published_at": self.checkpoint.time, "seq": self.checkpoint.size,
                           "hash": self.checkpoint.head, "checkpoint": self.checkpoint.text(),
                           "key": self.key, "signature": self.signature})


def parse_text(text: str) -> Checkpoint | None:
    lines = text.split("\n")
    if len(lines) != 7 or lines[0] != HEADER or lines[6] != "":
        return None
    names = ("size", "root", "head", "time", "previous")
    values: dict[str, str] = {}
    for name, line in zip(names, lines[1:6], strict=True):
        label, _, value = line.partition(" ")
        if label != name or not value:
            return None
        values[name] = value
    if not values["size"].isdigit() or int(values["size"]) < 1:
        return None
    checkpoint = Checkpoint(size=int(values["size"]), root=values["root"], head=values["head"],
                            time=values["time"], previous=values["previous"])
    return checkpoint if checkpoint.text() == text else None


def sign(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> Signed:
    signature = key.sign(checkpoint.text().encode("utf-8"))
    return Signed(checkpoint=checkpoint, key=fingerprint(key.public_key()),
                  signature=base64.b64encode(signature).decode("ascii"))


def read_checkpoints(heads_file: Path, keys: dict[str, Ed25519PublicKey]) -> list[Signed]:
    """Every checkpoint in the heads file, each signed by a known key and naming the one before
    it. With known keys, an unsigned head is refused too (whoever can write the file could have
    written it). CheckpointError names the first line that fails."""
    try:
        lines = heads_file.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read {heads_file}: {exc}") from None
    found: list[Signed] = []
    handover: Handover | None = None  # since the last checkpoint
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value: Any = json.loads(line)
        except ValueError:
            raise CheckpointError(f"heads file line {number} is not JSON") from None
        if isinstance(value, dict) and "handover" in value:
            handover = _check_handover(number, value, keys, found[-1] if found else None)
            continue
        if not isinstance(value, dict) or "checkpoint" not in value:
            if keys:
                raise CheckpointError(f"heads file line {number} is an unsigned head; "
                                      "only checkpoints signed by a known key are accepted")
            continue
        signed = _check_line(number, value, keys, found[-1] if found else None)
        before = found[-1] if found else None
        if before is not None and signed.key != before.key:
            if handover is None or handover.new != signed.key:
                raise CheckpointError(
                    f"heads file line {number}: checkpoint {signed.checkpoint.size} is signed "
                    f"by key {signed.key[:16]}…, but checkpoint {before.checkpoint.size} by "
                    f"{before.key[:16]}…, and no hand-over signed by that key names this one")
            signed = replace(signed, handover=handover)
        elif handover is not None:
            raise CheckpointError(f"heads file line {number}: checkpoint "
                                  f"{signed.checkpoint.size} follows a key hand-over but is "
                                  "not signed by the key handed over to")
        found.append(signed)
        handover = None
    return found


def _check_handover(number: int, value: dict[str, Any], keys: dict[str, Ed25519PublicKey],
                    before: Signed | None) -> Handover:
    """A hand-over is signed by the key of the checkpoint before it, names that checkpoint,
    and hands over to a known key."""
    where = f"heads file line {number}"
    handover = parse_handover(value, keys, where)
    if before is None or handover.old != before.key \
            or handover.after != before.checkpoint.digest():
        raise CheckpointError(f"{where}: the key hand-over does not follow the last checkpoint "
                              "signed by the outgoing key")
    if handover.new not in keys:
        raise CheckpointError(f"{where}: the key hand-over names an unknown key "
                              f"{handover.new[:16]}… (add it to "
                              "NOTICEBOT_CHECKPOINT_PUBLIC_KEYS)")
    return handover


def _check_line(number: int, value: dict[str, Any], keys: dict[str, Ed25519PublicKey],
                before: Signed | None) -> Signed:
    where = f"heads file line {number}"
    text, key, signature = value.get("checkpoint"), value.get("key"), value.get("signature")
    checkpoint = parse_text(text) if isinstance(text, str) else None
    if (checkpoint is None or not isinstance(text, str) or not isinstance(key, str)
            or not isinstance(signature, str)):
        raise CheckpointError(f"{where}: not a well-formed checkpoint")
    if value.get("seq") != checkpoint.size or value.get("hash") != checkpoint.head:
        raise CheckpointError(f"{where}: its seq/hash differ from the signed checkpoint")
    public = keys.get(key)
    if public is None:
        raise CheckpointError(f"{where}: checkpoint {checkpoint.size} is signed by an unknown "
                              f"key {key[:16]}…")
    try:
        public.verify(base64.b64decode(signature, validate=True), text.encode("utf-8"))
    except (InvalidSignature, binascii.Error, ValueError):
        raise CheckpointError(f"{where}: the signature of checkpoint {checkpoint.size} does "
                              "not verify (forged or altered)") from None
    expected = before.checkpoint.digest() if before else "none"
    if checkpoint.previous != expected:
        raise CheckpointError(f"{where}: checkpoint {checkpoint.size} does not follow the "
                              "checkpoint before it (one was removed, reordered or forked)")
    if before is not None and checkpoint.size < before.checkpoint.size:
        raise CheckpointError(f"{where}: checkpoint {checkpoint.size} is smaller than the "
                              f"one before it ({before.checkpoint.size})")
    return Signed(checkpoint=checkpoint, key=key, signature=signature, line=number)
