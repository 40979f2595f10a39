"""Crypto posture: which OpenSSL builds noticebot runs on, and whether they are in FIPS mode.

Two OpenSSL builds are in play: the one Python's `ssl` and `hashlib` link (TLS to Slack and the
USNCB liaison system; the base image's system OpenSSL) and the one `cryptography` uses (the
Fernet encryption of subject details and record content at rest; its PyPI wheels bundle their
own). With NOTICEBOT_REQUIRE_FIPS=true both must report FIPS mode, or noticebot does not start.
psycopg's binary wheel bundles a third (libpq's TLS to PostgreSQL), which cannot be queried: a
FIPS build installs psycopg without the binary extra, against the system's libpq.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class Library:
    name: str
    openssl: str
    fips: bool


def python_openssl() -> Library:
    try:
        import _hashlib

        fips = bool(_hashlib.get_fips_mode())
    except (ImportError, AttributeError):
        fips = False
    return Library("python ssl/hashlib", ssl.OPENSSL_VERSION, fips)


def cryptography_openssl() -> Library:
    from cryptography.hazmat.backends.openssl.backend import backend

    return Library("cryptography", backend.openssl_version_text(),
                   bool(getattr(backend, "_fips_enabled", False)))


def posture() -> list[Library]:
    return [python_openssl(), cryptography_openssl()]


class FipsError(Exception):
    pass


def require_fips(libraries: list[Library] | None = None) -> None:
    """Raise, naming each library not in FIPS mode, unless all are."""
    found = posture() if libraries is None else libraries
    off = [f"{lib.name} ({lib.openssl})" for lib in found if not lib.fips]
    if off:
        raise FipsError("NOTICEBOT_REQUIRE_FIPS is true but OpenSSL is not in FIPS mode for: "
                        + "; ".join(off) + " (see README 'Crypto posture')")
