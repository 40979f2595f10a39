"""Protection at rest for subject details and record content (Fernet, with key rotation).

`NOTICEBOT_ENCRYPTION_KEYS` lists Fernet keys, newest first: the first encrypts, all decrypt.
Sealed values carry a prefix, so a value written before a key was configured still reads.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "enc:v1:"


class VaultError(Exception):
    pass


class Vault:
    def __init__(self, keys: list[str] | tuple[str, ...]) -> None:
        self._keys = tuple(keys)
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys]) if keys else None
        except (ValueError, TypeError):
            raise VaultError("NOTICEBOT_ENCRYPTION_KEYS: each key must be a Fernet key "
                             "(noticebot keys generate)") from None

    def __reduce__(self) -> tuple[type[Vault], tuple[tuple[str, ...]]]:
        # Rebuilt from its keys in a worker process (the record's parallel verification).
        return (Vault, (self._keys,))

    @property
    def keys(self) -> tuple[str, ...]:
        return self._keys

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, text: str) -> str:
        if self._fernet is None or not text or text.startswith(PREFIX):
            return text
        return PREFIX + self._fernet.encrypt(text.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise VaultError("encrypted data found but NOTICEBOT_ENCRYPTION_KEYS is not set")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise VaultError("no configured key decrypts this value") from None

    def rotate(self, stored: str) -> str:
        """Re-encrypt with the newest key (plaintext gets sealed)."""
        if self._fernet is None:
            raise VaultError("NOTICEBOT_ENCRYPTION_KEYS is not set")
        if not stored.startswith(PREFIX):
            return self.seal(stored)
        return PREFIX + self._fernet.rotate(stored[len(PREFIX):].encode()).decode()


def generate_key() -> str:
    return Fernet.generate_key().decode()
