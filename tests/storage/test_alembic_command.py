"""The schema as an operator sees it: the ``alembic`` command with the repository's
``alembic.ini``, and ``exalate-bot migrate --current`` / ``--sql``, which look and
change nothing."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli.main import main
from bot.cli.parser import REFUSED
from storage import make_engine, schema_state, upgrade_schema
from storage.db import sqlite_file
from storage.schema import BASELINE, MIGRATIONS, head_revision

ROOT = Path(__file__).parents[2]
ALEMBIC_INI = ROOT / "alembic.ini"


async def _alembic(url: str, *arguments: str, ini: Path = ALEMBIC_INI) -> str:
    """Run ``alembic -c ini …`` on the database at ``url`` as an operator would (with
    DATABASE_URL set); its standard output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        "-c",
        str(ini),
        *arguments,
        env=os.environ | {"DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def _at(url: str, revision: str) -> AsyncEngine:
    """An engine on the database at ``url``, upgraded to ``revision``; dispose it."""
    engine = make_engine(url)
    await upgrade_schema(engine, revision)
    return engine


async def _current(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return (await schema_state(engine)).current
    finally:
        await engine.dispose()


async def _migrate(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str, str]:
    """``exalate-bot migrate OPTIONS`` with DATABASE_URL as set: exit code, out, err."""
    code = await asyncio.to_thread(main, ["migrate", *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class TestAlembicCommand:
    async def test_current_upgrade_and_history_on_database_url(self, database_url: str) -> None:
        assert await _alembic(database_url, "current") == ""
        await _alembic(database_url, "upgrade", "head")
        assert await _alembic(database_url, "current") == f"{head_revision()} (head)\n"
        history = await _alembic(database_url, "history")
        assert f"<base> -> {BASELINE}, Baseline" in history
        assert f"-> {head_revision()} (head)" in history

    async def test_an_sqlite_file_it_creates_is_private(self, tmp_path: Path) -> None:
        """As the bot's own: it holds sealed invitation codes and who approved what."""
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        await _alembic(url, "upgrade", BASELINE)
        path = sqlite_file(url)
        assert path is not None
        assert path.stat().st_mode & 0o777 == 0o600
        assert await _current(url) == BASELINE

    async def test_autogenerate_at_the_head_finds_nothing_to_do(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """The models agree with what the revisions build. The revision is written into a
        copy of the migrations, never into the repository's."""
        migrations = tmp_path / "migrations"
        shutil.copytree(MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
        ini = tmp_path / "alembic.ini"
        settings = ALEMBIC_INI.read_text()
        for option, value in (("script_location", migrations), ("prepend_sys_path", ROOT)):
            line = re.compile(rf"^{option} = .*$", re.MULTILINE)
            settings, found = line.subn(f"{option} = {value}", settings, count=1)
            assert found == 1
        ini.write_text(settings)
        shipped = sorted(path.name for path in (MIGRATIONS / "versions").glob("*.py"))
        await _alembic(database_url, "upgrade", "head", ini=ini)

        await _alembic(
            database_url, "revision", "-m", "x", "--autogenerate", "--rev-id", "9999", ini=ini
        )

        written = migrations / "versions" / "9999_x.py"
        try:
            text = written.read_text()
            assert f"down_revision = '{head_revision()}'" in text
            assert re.findall(r"\bop\.\w+", text) == []
        finally:
            written.unlink()
        assert sorted(path.name for path in (MIGRATIONS / "versions").glob("*.py")) == shipped


class TestMigrateCurrent:
    async def test_prints_both_revisions_and_changes_nothing(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await (await _at(database_url, BASELINE)).dispose()
        monkeypatch.setenv("DATABASE_URL", database_url)
        code, out, _ = await _migrate(capsys, "--current")
        assert code == 0
        lines = out.splitlines()
        assert lines[:2] == [f"Current revision: {BASELINE}", f"Newest revision: {head_revision()}"]
        assert "run `exalate-bot migrate`" in lines[2]
        assert await _current(database_url) == BASELINE

    async def test_an_sqlite_file_that_does_not_exist_is_not_created(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "bot.db"
        monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
        code, out, _ = await _migrate(capsys, "--current")
        assert code == 0
        assert out.startswith("Current revision: none\n")
        assert "empty" in out
        assert not path.exists()


class TestMigrateSql:
    @pytest.mark.parametrize("backend", ["sqlite"])
    async def test_sqlite_outbox_rebuild_is_refused_in_one_line(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """0007 makes the outbox's request_id nullable, which SQLite does by copying the
        table: the SQL cannot be written out, and nothing is run."""
        await (await _at(database_url, "0006")).dispose()
        monkeypatch.setenv("DATABASE_URL", database_url)
        code, out, err = await _migrate(capsys, "--sql")
        assert code == REFUSED
        assert out == ""
        assert err.startswith("exalate-bot: The SQL of revision 0007 cannot be written for sqlite")
        assert await _current(database_url) == "0006"

    @pytest.mark.parametrize("backend", ["sqlite"])
    async def test_sqlite_a_table_copy_is_refused_in_one_line(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """0003 rebuilds connection_request, which Alembic must read to write out."""
        await (await _at(database_url, "0002")).dispose()
        monkeypatch.setenv("DATABASE_URL", database_url)
        code, out, err = await _migrate(capsys, "--sql")
        assert code == REFUSED
        assert out == ""
        assert err.startswith("exalate-bot: The SQL of revision 0003 cannot be written for sqlite")
        assert len(err.splitlines()) == 1
        assert await _current(database_url) == "0002"

    async def test_at_the_head_there_is_nothing_to_run(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await (await _at(database_url, "head")).dispose()
        monkeypatch.setenv("DATABASE_URL", database_url)
        code, out, _ = await _migrate(capsys, "--sql")
        assert code == 0
        assert out.splitlines()[-1] == "-- Nothing to run."

    @pytest.mark.parametrize("backend", ["postgresql"])
    async def test_postgresql_every_revision_from_the_current_one(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await (await _at(database_url, "0002")).dispose()
        monkeypatch.setenv("DATABASE_URL", database_url)
        code, out, _ = await _migrate(capsys, "--sql")
        assert code == 0
        assert "Running upgrade 0001" not in out
        assert "-- Running upgrade 0002 -> 0003" in out
        assert (
            "ALTER TABLE connection_request DROP CONSTRAINT uq_connection_request_open_name;" in out
        )
        assert f"alembic_version SET version_num='{head_revision()}'" in out
        assert out.rstrip().endswith("COMMIT;")
        assert await _current(database_url) == "0002"

    @pytest.mark.parametrize("backend", ["postgresql"])
    async def test_postgresql_empty_from_the_first_table(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", database_url)
        code, out, _ = await _migrate(capsys, "--sql")
        assert code == 0
        assert "CREATE TABLE alembic_version" in out
        assert "CREATE TABLE connection_request" in out
        assert await _current(database_url) is None

    @pytest.mark.parametrize("backend", ["postgresql"])
    async def test_postgresql_made_before_migrations_names_the_adoption(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        engine = await _at(database_url, BASELINE)
        async with engine.begin() as connection:
            await connection.exec_driver_sql("DROP TABLE alembic_version")
        await engine.dispose()
        monkeypatch.setenv("DATABASE_URL", database_url)
        code, out, _ = await _migrate(capsys, "--sql")
        assert code == 0
        assert f"stamps {BASELINE}; then:" in out
        assert f"-- Running upgrade {BASELINE} -> 0002" in out
        assert await _current(database_url) is None
