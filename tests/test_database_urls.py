"""PostgreSQL URLs as people write them: a password in the query is masked wherever the
URL is shown or logged, and options asyncpg does not take, or a port that is none, are
refused as settings (exit 2, one line, the right spelling) before anything is created."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from bot.cli.main import main
from bot.cli.parser import DATABASE_UNAVAILABLE, REFUSED
from bot.config import load_settings
from bot.database_url import _ASYNCPG_OPTIONS, database_passwords
from bot.log import RedactSecrets
from storage.db import describe
from tests.test_cli import BOT_SETTINGS

SECRET = "pw-Secret-9"
COMMANDS = [["run"], ["migrate"], ["audit", "export"]]
BASE = "postgresql+asyncpg://bot@127.0.0.1:9/bot"


def _configure(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    for name, value in BOT_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", database_url)


def _refusal(
    command: list[str],
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """What ``command`` says of ``url``: refused as a setting, in one line, nothing left
    behind."""
    _configure(monkeypatch, url)
    assert main(command) == REFUSED
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == "exalate-bot: Invalid settings:"
    assert len(lines) == 2
    assert "Traceback" not in captured.err
    assert SECRET not in captured.out + captured.err
    assert list(Path.cwd().iterdir()) == []
    return lines[1].strip()


class TestPasswordInTheQuery:
    @pytest.mark.parametrize("command", COMMANDS)
    def test_is_masked_in_the_message(
        self,
        command: list[str],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The finding: ``?password=`` was printed in clear by run, migrate and audit
        export. Now it is ``***`` like the userinfo's."""
        _configure(monkeypatch, f"{BASE}?password={SECRET}")
        assert main(command) == DATABASE_UNAVAILABLE
        captured = capsys.readouterr()
        said = captured.err.splitlines()[-1]
        assert said.startswith(
            "exalate-bot: Cannot use the database postgresql+asyncpg://bot@127.0.0.1:9/bot"
            "?password=***: ConnectionRefusedError"
        )
        assert SECRET not in captured.out + captured.err

    def test_doctor_does_not_show_it(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _configure(monkeypatch, f"{BASE}?ssl=disable&password={SECRET}")
        main(["doctor"])
        captured = capsys.readouterr()
        assert "Database" in captured.out
        assert SECRET not in captured.out + captured.err

    @pytest.mark.parametrize(
        "url",
        [
            f"{BASE}?password={SECRET}",
            f"postgresql+asyncpg://bot:{SECRET}@127.0.0.1:9/bot",
        ],
    )
    def test_is_a_secret_the_logs_redact(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every spelling of the password is among the settings' secrets, so no log line
        carries it, however a library writes the URL."""
        _configure(monkeypatch, url)
        secrets = load_settings().secrets()
        assert SECRET in secrets
        redact = RedactSecrets(secrets).redact
        assert SECRET not in redact(f"connecting to {url} as bot:{SECRET} (pw {SECRET})")

    def test_a_password_given_twice_is_refused_unshown(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        url = f"{BASE}?password=other-one-1&password={SECRET}"
        said = _refusal(["run"], url, monkeypatch, capsys)
        assert said == "DATABASE_URL gives password= more than once"
        assert database_passwords(url) == ["other-one-1", SECRET]

    def test_every_spelling_is_masked_in_a_description(self) -> None:
        shown = describe(f"postgresql+asyncpg://bot:a-b-c@h/db?sslpassword=k1&password={SECRET}")
        assert shown == "postgresql+asyncpg://bot:***@h/db?password=***&sslpassword=***"


class TestOptionsAsyncpgDoesNotTake:
    @pytest.mark.parametrize("command", COMMANDS)
    def test_sslmode_is_explained_with_the_right_spelling(
        self,
        command: list[str],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The finding: ``?sslmode=require`` stopped with asyncpg's TypeError, a
        traceback and exit 1. Now it is one line with asyncpg's spelling, exit 2."""
        said = _refusal(command, f"{BASE}?sslmode=require&password={SECRET}", monkeypatch, capsys)
        assert said == (
            "DATABASE_URL gives sslmode=, libpq's spelling: asyncpg takes ssl=require (one of "
            "disable, allow, prefer, require, verify-ca, verify-full)"
        )

    @pytest.mark.parametrize(
        ("query", "fragment"),
        [
            ("sslrootcert=/etc/ca.pem", "set PGSSLROOTCERT to the file's path instead"),
            ("dbname=bot", "name the database in the path"),
            ("ssl=true", "gives an ssl= asyncpg does not know: one of disable"),
            ("application_name=bot", "application_name=, which asyncpg does not take"),
            ("command_timeout=5", "command_timeout=, which asyncpg does not take"),
            ("ssl=require&ssl=disable", "gives ssl= more than once"),
        ],
    )
    def test_each_is_named_with_what_to_do(
        self,
        query: str,
        fragment: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        assert fragment in _refusal(["audit", "export"], f"{BASE}?{query}", monkeypatch, capsys)

    def test_the_options_taken_are_asyncpgs(self) -> None:
        """The list of what a URL may give follows asyncpg's connect() (and SQLAlchemy's
        one option of its own)."""
        taken = set(inspect.signature(asyncpg.connect).parameters)
        assert _ASYNCPG_OPTIONS - {"prepared_statement_cache_size"} <= taken

    def test_what_asyncpg_takes_is_accepted(self, monkeypatch: pytest.MonkeyPatch) -> None:
        url = f"{BASE}?ssl=verify-full&target_session_attrs=primary&host=h1:5432&host=h2:5433"
        _configure(monkeypatch, url)
        assert load_settings().database_url == url


class TestPorts:
    @pytest.mark.parametrize(
        ("url", "said"),
        [
            (
                f"postgresql+asyncpg://bot:{SECRET}@127.0.0.1:abc/bot",
                "DATABASE_URL has a port that is not a number",
            ),
            ("postgresql+asyncpg://bot@127.0.0.1:99999/bot", "DATABASE_URL has the port 99999"),
            ("postgresql+asyncpg://bot@127.0.0.1:0/bot", "DATABASE_URL has the port 0"),
            (f"{BASE}?port=x5432", "DATABASE_URL has a port that is not a number"),
            ("postgresql+asyncpg://bot@/bot?host=h1:5432&host=h2:x", "is not a number"),
        ],
    )
    @pytest.mark.parametrize("command", COMMANDS)
    def test_a_port_that_is_none_is_a_setting_refused(
        self,
        url: str,
        said: str,
        command: list[str],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The finding: a port out of range stopped with an OverflowError's traceback
        and exit 1. Now it is one line, exit 2, before anything is created."""
        line = _refusal(command, url, monkeypatch, capsys)
        assert said in line
        assert line.endswith("a port is a number from 1 to 65535 (PostgreSQL's is 5432)")


def test_a_run_logs_no_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run`` logs before it reaches the database: no line carries the password."""
    _configure(monkeypatch, f"{BASE}?password={SECRET}")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    assert main(["run"]) == DATABASE_UNAVAILABLE
    err = capsys.readouterr().err
    assert all(json.loads(line) for line in err.splitlines()[:-1])
    assert SECRET not in err


def test_migrate_copy_from_is_checked_like_database_url(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    source = f"postgresql+asyncpg://bot:{SECRET}@127.0.0.1/bot?sslmode=require"
    assert main(["migrate", "--copy-from", source]) == 2
    error = capsys.readouterr().err
    assert "--copy-from gives sslmode=, libpq's spelling: asyncpg takes ssl=require" in error
    assert SECRET not in error
    assert "Traceback" not in error
