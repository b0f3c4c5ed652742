"""The console script's start-up checks, run in-process."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.__main__ import main
from bot.app import SIMULATED_JIRA, Runtime, simulated_jira
from bot.config import load_settings


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
