"""The command line as an operator meets it: help at once, a version, descriptions and
exit codes, and doctor's output read through a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import main

HEAVY = ("sqlalchemy", "slack_bolt", "slack_sdk", "pydantic", "aiohttp", "cryptography", "alembic")
SETTINGS = {
    "SLACK_BOT_TOKEN": "xoxb-1-abc",
    "JIRA_URL": "http://127.0.0.1:9",
    "JIRA_TOKEN": "surface-test-token",
    "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
    "EXALATE_APPROVERS": "U0ADMIN",
    "SLACK_API_URL": "http://127.0.0.1:9/api/",  # nothing listens: Slack checks fail fast
}


def _python(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_help_loads_no_dependency() -> None:
    """``--help`` imports the standard library only: what makes it answer at once (see
    BENCHMARKS for the time it takes)."""
    loaded = _python(
        "-c",
        "import sys; from bot.cli.main import main; "
        "sys.argv = ['exalate-bot', '--help']\n"
        "try: main()\n"
        "except SystemExit: pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))",
    )
    assert loaded.stdout.strip().endswith("[]"), loaded.stdout + loaded.stderr


def test_help_describes_every_command_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "migrate", "demo", "doctor", "audit", "routes", "simulator"):
        assert f"\n    {command}" in out
    assert "exit codes:" in out
    assert "3  the database did not answer" in out
    with pytest.raises(SystemExit):
        main(["doctor", "--help"])
    out = capsys.readouterr().out
    assert "One line per check" in out
    assert "exit codes:" in out


def test_version_and_a_missing_sub_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0
    assert capsys.readouterr().out.startswith("exalate-bot ")
    with pytest.raises(SystemExit) as audit:
        main(["audit"])
    assert audit.value.code == 2
    error = capsys.readouterr().err
    assert "required: COMMAND" in error
    assert "audit_command" not in error


def _doctor_environment(tmp_path: Path, **more: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "JIRA_"))}
    return keep | SETTINGS | {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db"} | more


def test_doctor_reads_settings_as_run_would_and_names_a_misspelt_variable(
    tmp_path: Path,
) -> None:
    """Socket Mode (the default) needs SLACK_APP_TOKEN: doctor says so with the rest;
    given it, doctor lists a misspelt variable and says there is no database file yet
    instead of calling its modes fine."""
    done = _python("-m", "bot.cli.main", "doctor", env=_doctor_environment(tmp_path))
    assert done.returncode == 1
    assert "SLACK_APP_TOKEN is missing" in done.stdout
    done = _python(
        "-m",
        "bot.cli.main",
        "doctor",
        env=_doctor_environment(
            tmp_path, SLACK_APP_TOKEN="xapp-1-surface", EXALATE_APROVERS="U0ADMIN"
        ),
    )
    assert "✓ Settings: valid" in done.stdout
    assert "! Settings: EXALATE_APROVERS is not a setting; did you mean EXALATE_APPROVERS?" in (
        done.stdout
    )
    assert f"! File modes: {tmp_path}/bot.db does not exist yet" in done.stdout
    assert not (tmp_path / "bot.db").exists()


def test_doctor_through_a_pipe_that_closes_early_ends_quietly(tmp_path: Path) -> None:
    """``exalate-bot doctor | head -1``: the reader is gone before the doctor writes
    (here from the start, so that every write meets the closed pipe); it stops
    without a BrokenPipeError traceback."""
    environment = _doctor_environment(tmp_path, SLACK_APP_TOKEN="xapp-1-surface")
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli.main", "doctor"],
            stdout=writer,
            stderr=subprocess.PIPE,
            env=environment,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)
    errors = done.stderr.decode()
    assert "Traceback" not in errors
    assert "BrokenPipeError" not in errors
    assert done.returncode == 0
