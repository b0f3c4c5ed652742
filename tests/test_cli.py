"""The console script's start-up checks, run in-process."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.fernet import Fernet

from bot.__main__ import main
from bot.app import SIMULATED_JIRA, Runtime, simulated_jira
from bot.config import load_settings
from storage import make_engine, upgrade_schema
from storage.schema import BASELINE, head_revision


class TestMain:
    def test_missing_settings_exit_2_naming_them(self, capsys: pytest.CaptureFixture[str]) -> None:
        """With nothing configured, start-up stops before connecting and lists the gaps."""
        assert main(["run"]) == 2
        error = capsys.readouterr().err
        for name in ("SLACK_BOT_TOKEN", "JIRA_URL", "JIRA_TOKEN", "EXALATE_APPROVERS"):
            assert f"{name} is missing" in error

    def test_http_mode_refuses_an_empty_signing_secret(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`run --http` without SLACK_SIGNING_SECRET stops with its name."""
        for name, value in {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "JIRA_URL": "http://127.0.0.1:9",
            "JIRA_TOKEN": "t",
            "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
            "EXALATE_APPROVERS": "U0ADMIN",
        }.items():
            monkeypatch.setenv(name, value)
        assert main(["run", "--http", "--port", "0"]) == 2
        assert "SLACK_SIGNING_SECRET" in capsys.readouterr().err


class TestSimulatedJira:
    async def test_runtime_talks_to_the_built_in_simulator(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--simulated-jira needs no JIRA_URL or JIRA_TOKEN and reads Jira from the simulator."""
        for name, value in {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
            "EXALATE_APPROVERS": "U0ADMIN",
            "DATABASE_URL": "sqlite+aiosqlite://",
            "EXALATE_SECRET_KEY": Fernet.generate_key().decode(),
        }.items():
            monkeypatch.setenv(name, value)
        settings = load_settings(**SIMULATED_JIRA)
        async with simulated_jira(settings) as simulated:
            assert simulated.jira_url.startswith("http://127.0.0.1:")
            runtime = await Runtime.start(simulated, http_mode=True)
            try:
                projects = await runtime.service.projects.get(wait=5)
            finally:
                await runtime.close()
        assert "SUP" in {project.key for project in projects}


class TestDoctorCommand:
    def test_invalid_settings_fail_the_first_check(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With nothing configured, doctor prints ✗ for the settings and exits 1."""
        assert main(["doctor"]) == 1
        assert capsys.readouterr().out.startswith("✗ Settings:")


UNREACHABLE = "postgresql+asyncpg://bot:pw-Secret-9@127.0.0.1:9/bot"
BOT_SETTINGS = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_APP_TOKEN": "xapp-1",
    "JIRA_URL": "http://127.0.0.1:9",
    "JIRA_TOKEN": "t",
    "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
    "EXALATE_APPROVERS": "U0ADMIN",
    "EXALATE_SECRET_KEY": Fernet.generate_key().decode(),
}


class TestDatabaseCommands:
    async def test_migrate_upgrades_once_then_says_there_is_nothing_to_do(
        self,
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", database_url)
        assert await asyncio.to_thread(main, ["migrate"]) == 0
        assert f"upgraded from empty to {head_revision()}" in capsys.readouterr().out
        assert await asyncio.to_thread(main, ["migrate"]) == 0
        assert "already at the newest revision" in capsys.readouterr().out

    @pytest.mark.parametrize("backend", ["postgresql"])
    async def test_run_refuses_an_old_postgresql_schema_with_the_command(
        self,
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Replicas upgrade PostgreSQL only when told: without --migrate, the bot stops
        before it touches the database, and says what to run."""
        engine = make_engine(database_url)
        await upgrade_schema(engine, BASELINE)
        await engine.dispose()
        for name, value in BOT_SETTINGS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DATABASE_URL", database_url)
        assert await asyncio.to_thread(main, ["run"]) == 2
        error = capsys.readouterr().err
        assert error.startswith("exalate-bot: The database is at revision 0001")
        assert "run `exalate-bot migrate`" in error
        assert "--migrate" in error
        assert len(error.splitlines()) == 1

    @pytest.mark.parametrize("command", [["run"], ["migrate"], ["audit", "export"]])
    def test_an_unreachable_database_is_one_line_without_the_password(
        self,
        command: list[str],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        for name, value in BOT_SETTINGS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
        assert main(command) == 2
        captured = capsys.readouterr()
        assert captured.err == (
            "exalate-bot: Cannot use the database postgresql+asyncpg://bot:***@127.0.0.1:9/bot: "
            "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 9)\n"
        )
        assert "pw-Secret-9" not in captured.out + captured.err
