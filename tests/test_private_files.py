"""The database, its side files and the key file are the bot's alone."""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from bot.cli.doctor import file_modes
from bot.config import Settings, SettingsError
from bot.private_files import sqlite_files, tighten
from bot.vault import key_file_for, load_or_create_key
from storage import make_engine, upgrade_schema


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestTighten:
    def test_loose_file_is_made_private_with_a_warning(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tmp_path / "bot.db.key"
        path.write_bytes(b"k")
        path.chmod(0o644)
        with caplog.at_level(logging.WARNING, logger="bot.private_files"):
            tighten(path)
        assert _mode(path) == 0o600
        assert "was=0644 now=0600" in caplog.text

    def test_a_file_that_cannot_be_tightened_stops_start_up(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Someone else's file (chmod refused): a clear SettingsError, not a silent run."""
        path = tmp_path / "bot.db"
        path.write_bytes(b"")
        path.chmod(0o666)

        def refuse(*_: object) -> None:
            raise PermissionError("not the owner")

        monkeypatch.setattr(os, "chmod", refuse)
        with pytest.raises(SettingsError, match="chmod 600"):
            tighten(path)


class TestDatabaseFiles:
    async def test_loose_database_and_side_files_are_made_private(self, tmp_path: Path) -> None:
        """A database restored 0666 with 0666 side files: all 0600 once the bot opens it."""
        database = tmp_path / "bot.db"
        for file in sqlite_files(database):
            file.write_bytes(b"")
            file.chmod(0o666)
        database.unlink()  # an empty file is no database; the side files stay loose
        database.write_bytes(b"")
        database.chmod(0o666)
        engine = make_engine(f"sqlite+aiosqlite:///{database}")
        try:
            await upgrade_schema(engine)
        finally:
            await engine.dispose()
        for file in sqlite_files(database):
            if file.exists():
                assert _mode(file) == 0o600, file


class TestKeyFile:
    def test_two_processes_starting_at_once_get_the_same_whole_key(self, tmp_path: Path) -> None:
        """Never an empty key for the second: the file appears whole, the first wins."""
        path = tmp_path / "bot.db.key"
        start = threading.Barrier(8)
        keys: list[bytes] = []

        def load() -> None:
            start.wait()
            keys.append(load_or_create_key(path))

        threads = [threading.Thread(target=load) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(keys)) == 1
        assert len(keys[0]) == 44
        assert _mode(path) == 0o600
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.db.key"]

    def test_a_loose_key_file_is_used_once_made_private(self, tmp_path: Path) -> None:
        path = tmp_path / "bot.db.key"
        path.write_bytes(b"existing-key\n")
        path.chmod(0o644)
        assert load_or_create_key(path) == b"existing-key"
        assert _mode(path) == 0o600


class TestDoctor:
    def test_doctor_names_exposed_files(self, tmp_path: Path, settings_for: Settings) -> None:
        database = tmp_path / "bot.db"
        settings = settings_for.model_copy(
            update={"database_url": f"sqlite+aiosqlite:///{database}"}
        )
        database.write_bytes(b"")
        database.chmod(0o600)
        check = file_modes(settings)
        assert check is not None
        assert check.ok is True
        key_file_for(database).write_bytes(b"k")
        key_file_for(database).chmod(0o640)
        check = file_modes(settings)
        assert check is not None
        assert check.ok is False
        assert "bot.db.key (0640)" in check.detail


@pytest.fixture(name="settings_for")
def _settings_for() -> Settings:
    from bot.config import load_settings

    return load_settings(
        slack_bot_token="xoxb-1",
        jira_url="https://jira.example.invalid",
        jira_token="test-jira-token",
        exalate_approval_channel="C0APPROVE",
        exalate_approvers="U0ADMIN",
    )
