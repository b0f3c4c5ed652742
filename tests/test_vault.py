"""Encryption at rest of invitation codes, and the generated key file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.config import SettingsError
from bot.vault import Vault, key_file_for, load_or_create_key


class TestVault:
    def test_seal_and_open(self) -> None:
        """A sealed code opens to itself and does not contain it."""
        vault = Vault(Fernet.generate_key())
        sealed = vault.seal("INVITE-CODE-123")
        assert b"INVITE-CODE-123" not in sealed
        assert vault.open(sealed) == "INVITE-CODE-123"

    def test_wrong_key_is_a_clear_error(self) -> None:
        """Opening with another key names the setting to check."""
        sealed = Vault(Fernet.generate_key()).seal("code")
        with pytest.raises(SettingsError, match="EXALATE_SECRET_KEY"):
            Vault(Fernet.generate_key()).open(sealed)

    def test_malformed_key_is_a_clear_error(self) -> None:
        """A key that is not a Fernet key stops start-up with instructions."""
        with pytest.raises(SettingsError, match=r"Fernet\.generate_key"):
            Vault(b"not-a-key")

    def test_repr_hides_the_key(self) -> None:
        """Printing a vault never shows its key."""
        key = Fernet.generate_key()
        assert key.decode() not in repr(Vault(key))


class TestKeyFile:
    def test_created_once_with_mode_0600(self, tmp_path: Path) -> None:
        """The first start creates a private key file; later starts read the same key."""
        path = key_file_for(tmp_path / "bot.db")
        first = load_or_create_key(path)
        assert path.name == "bot.db.key"
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert load_or_create_key(path) == first
