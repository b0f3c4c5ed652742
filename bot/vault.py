"""Encryption at rest for invitation codes (Fernet: AES-128-CBC with HMAC-SHA256).

The key comes from ``EXALATE_SECRET_KEY``. On the embedded SQLite default, when no key
is set, one is generated once into a file beside the database with mode 0600, so a
stolen database file alone does not reveal any code.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from bot.config import SettingsError
from bot.private_files import tighten, write_new


class Vault:
    """Seals and opens secrets; ``repr`` never shows the key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise SettingsError(
                "EXALATE_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes); "
                'create one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            ) from None

    def __repr__(self) -> str:
        return "Vault(<key hidden>)"

    def seal(self, secret: str) -> bytes:
        """Encrypt ``secret`` for storage."""
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        """Decrypt a stored secret; a wrong key is a configuration error, said plainly."""
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise SettingsError(
                "A stored invitation code cannot be decrypted: EXALATE_SECRET_KEY (or the "
                "key file) is not the key it was stored with."
            ) from None


def key_file_for(database_file: Path) -> Path:
    """Where the generated key lives: beside the database, named after it."""
    return database_file.with_name(database_file.name + ".key")


def load_or_create_key(path: Path) -> bytes:
    """Read the key file (made private if it was not), or create it on first start:
    mode 0600, written whole before anyone can see it, the first of two starting
    processes winning."""
    tighten(path)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    key = Fernet.generate_key()
    try:
        return key if write_new(path, key) else path.read_bytes().strip()
    except OSError as error:
        raise SettingsError(
            f"The key file {path} cannot be created ({error.strerror}): make "
            f"{path.parent} writable by this user, or give EXALATE_SECRET_KEY."
        ) from None
