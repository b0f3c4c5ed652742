"""A start that cannot work is refused in one line, exit 2, without a traceback and
without creating anything: the bot as a process, as systemd or Docker start it (exit 2
is in the unit's RestartPreventExitStatus: a restart would only repeat it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.parser import REFUSED

SETTINGS = {
    "SLACK_BOT_TOKEN": "xoxb-1-refusals",
    "SLACK_SIGNING_SECRET": "signing-secret",
    "JIRA_URL": "http://127.0.0.1:9",
    "JIRA_TOKEN": "refusals-test-token",
    "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
    "EXALATE_APPROVERS": "U0ADMIN",
}


def _run(tmp_path: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "JIRA_"))}
    database = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"}
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "bot", "run", "--http", "--host", "127.0.0.1", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=keep | SETTINGS | database | environment,
    )


def _refused(done: subprocess.CompletedProcess[str], said: str) -> None:
    assert done.returncode == REFUSED, done.stderr
    assert said in done.stderr
    assert "Traceback" not in done.stderr


def test_the_same_port_for_slack_and_the_probes(tmp_path: Path) -> None:
    done = _run(tmp_path, "--port", "18123", "--health-port", "18123")
    _refused(done, "--port and --health-port are both 18123")
    assert list(tmp_path.iterdir()) == []


def test_a_port_another_process_has(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(tmp_path, "--port", str(port))
    _refused(done, f"Cannot listen on 127.0.0.1:{port} (Address already in use)")
    assert "choose another --port" in done.stderr


def test_a_database_in_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    """A typo in the path is not a new, empty database somewhere else."""
    typo = tmp_path / "dtaa" / "bot.db"
    done = _run(tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{typo}")
    _refused(done, f"{typo.parent}, which does not exist")
    assert not typo.parent.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only /sys (Linux)")
def test_storage_the_bot_may_not_write(tmp_path: Path) -> None:
    """/sys refuses new files even to root: as a read-only volume would."""
    done = _run(tmp_path, DATABASE_URL="sqlite+aiosqlite:////sys/exalate-bot.db")
    _refused(done, "cannot be created (Permission denied)")


def test_a_database_url_asyncpg_would_refuse_and_its_password(tmp_path: Path) -> None:
    """libpq's ``sslmode=`` and a password given as ``?password=``: one line with the
    right spelling, exit 2, and the password nowhere."""
    url = "postgresql+asyncpg://bot@127.0.0.1:5432/bot?password=pw-Query-7&sslmode=require"
    done = _run(tmp_path, DATABASE_URL=url, EXALATE_SECRET_KEY="unused-here")
    _refused(done, "asyncpg takes ssl=require")
    assert "pw-Query-7" not in done.stderr + done.stdout
