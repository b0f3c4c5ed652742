"""The schema's revisions on both databases: upgrade, adoption, one upgrader at a time."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.approvals.model import RequestFields, Status
from storage import (
    RequestRepository,
    SchemaBehind,
    make_engine,
    make_sessionmaker,
    prepare_schema,
    schema_state,
    upgrade_schema,
)
from storage.schema import BASELINE, head_revision
from storage.tables import Base

MADE_BY_CREATE_SCHEMA = Path(__file__).parent / "data" / "created_by_create_schema.db"


@pytest.fixture(name="engine")
async def _engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


async def _revisions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        return [row[0] for row in rows]


class TestUpgrade:
    async def test_an_empty_database_is_brought_to_the_head(self, engine: AsyncEngine) -> None:
        before = await upgrade_schema(engine)
        assert before.current is None
        assert not before.before_migrations
        state = await schema_state(engine)
        assert state.at_head
        assert state.current == head_revision()

    async def test_the_models_match_what_the_revisions_build(self, engine: AsyncEngine) -> None:
        """A model changed without a revision (or the reverse) shows up here."""
        await upgrade_schema(engine)
        assert await _differences_from_the_models(engine) == []

    async def test_upgrading_twice_changes_nothing(self, engine: AsyncEngine) -> None:
        await upgrade_schema(engine)
        again = await upgrade_schema(engine)
        assert again.at_head
        assert await _revisions(engine) == [head_revision()]

    async def test_replicas_upgrading_at_once_upgrade_once(
        self, database_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Four processes starting together on one database: one upgrades, the others
        find it done (an advisory lock on PostgreSQL, a file lock on SQLite)."""
        engines = [make_engine(database_url) for _ in range(4)]
        try:
            with caplog.at_level(logging.INFO, logger="storage.schema"):
                befores = await asyncio.gather(*(upgrade_schema(e) for e in engines))
            assert sum(not before.at_head for before in befores) == 1
            upgraded = [r for r in caplog.records if r.getMessage().startswith("schema_upgraded")]
            assert len(upgraded) == 1
            assert await _revisions(engines[0]) == [head_revision()]
        finally:
            for engine in engines:
                await engine.dispose()


class TestOldSchema:
    async def test_without_permission_an_old_schema_is_refused_with_the_command(
        self, engine: AsyncEngine
    ) -> None:
        """PostgreSQL without --migrate: the bot does not start on an old schema."""
        await upgrade_schema(engine, BASELINE)
        with pytest.raises(SchemaBehind, match="exalate-bot migrate"):
            await prepare_schema(engine, upgrade=False)
        assert await _revisions(engine) == [BASELINE]

    async def test_with_permission_an_old_schema_is_upgraded(self, engine: AsyncEngine) -> None:
        await upgrade_schema(engine, BASELINE)
        await prepare_schema(engine, upgrade=True)
        assert (await schema_state(engine)).at_head

    async def test_tables_without_a_revision_are_adopted_keeping_their_rows(
        self, engine: AsyncEngine
    ) -> None:
        """A database whose tables were made before migrations (the baseline's tables,
        no alembic_version, without the index create_schema added last) is stamped and
        upgraded, not built again, and ends up exactly as the models say."""
        await upgrade_schema(engine, BASELINE)
        async with engine.begin() as connection:
            await connection.exec_driver_sql("DROP TABLE alembic_version")
            await connection.exec_driver_sql("DROP INDEX ix_connection_request_status_created")
            await connection.exec_driver_sql(
                "INSERT INTO connection_request (id, status, version, requester, "
                "local_short_name, remote_short_name, connection_name, open_name, "
                "description, project_key, created_at, updated_at) VALUES (7, "
                "'pending_approval', 1, 'U1', 'acme', 'p', 'acme_to_p', 'acme_to_p', '', "
                "'SUP', '2026-11-30 10:00:00+00:00', '2026-11-30 10:00:00+00:00')"
            )
        state = await schema_state(engine)
        assert state.before_migrations
        assert "adopt" in state.describe()
        before = await upgrade_schema(engine)
        assert before.before_migrations
        assert await _differences_from_the_models(engine) == []
        request = await RequestRepository(make_sessionmaker(engine)).get(7)
        assert request is not None
        assert request.fields.connection_name == "acme_to_p"
        assert request.created_at == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


async def _differences_from_the_models(engine: AsyncEngine) -> list[object]:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608
            for table in ("connection_request", "audit_event")
        }


class TestAdoptingAFileMadeByCreateSchema:
    """tests/storage/data holds an SQLite file made by the last version without
    migrations: five requests in four states, nine audit rows."""

    async def test_every_row_survives_and_the_file_is_at_the_head(self, tmp_path: Path) -> None:
        path = tmp_path / "bot.db"
        shutil.copy(MADE_BY_CREATE_SCHEMA, path)
        before = _rows(path)
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            assert (await upgrade_schema(engine)).before_migrations
            assert (await schema_state(engine)).at_head
        finally:
            await engine.dispose()
        after = _rows(path)
        assert len(after["connection_request"]) == 5
        assert len(after["audit_event"]) == 9
        assert after["audit_event"] == before["audit_event"]
        # Each request keeps every value it had; the new column is appended, empty.
        for old, new in zip(before["connection_request"], after["connection_request"], strict=True):
            assert new[: len(old)] == old
            assert new[len(old) :] == (None,)

    async def test_the_adopted_requests_work_as_before(self, tmp_path: Path) -> None:
        """The interrupted initiation in the file can still be settled, the sealed code
        is still there, and a new request gets the next id."""
        path = tmp_path / "bot.db"
        shutil.copy(MADE_BY_CREATE_SCHEMA, path)
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade_schema(engine)
            repository = RequestRepository(make_sessionmaker(engine))
            initiating = await repository.get(4)
            assert initiating is not None
            assert initiating.status is Status.INITIATING
            assert initiating.may_adopt
            failed = await repository.transition(
                initiating, Status.FAILED, actor="bot", at=datetime.now(UTC), error="x"
            )
            assert failed is not None
            assert await repository.invitation_code(2) == b"gAAAA-sealed-bytes"
            fresh = await repository.add(
                initiating.fields.__class__("acme", "q", "acme_to_q", "", "SUP"),
                "U9",
                datetime.now(UTC),
            )
            assert fresh.id == 6
            async with engine.connect() as connection:
                integrity = await connection.exec_driver_sql("PRAGMA integrity_check")
                assert integrity.scalar() == "ok"
                foreign = await connection.execute(sa.text("PRAGMA foreign_key_check"))
                assert foreign.all() == []
        finally:
            await engine.dispose()


def _rows_seen_by_another_process(path: Path) -> int:
    """What a separate process reading the file counts (SQLite's locks are per process)."""
    read = subprocess.run(  # noqa: S603  # this interpreter, fixed arguments
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "print(c.execute('SELECT count(*) FROM connection_request').fetchone()[0])",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    return int(read.stdout)


class TestUpgradingLeavesSQLiteItsLocks:
    async def test_another_process_sees_every_write_after_an_upgrade(self, tmp_path: Path) -> None:
        """Regression: the upgrade once locked the database file itself, and closing that
        descriptor dropped SQLite's own locks in this process. Another process then took
        itself for the file's only user, checkpointed and removed the write-ahead log on
        closing, and the bot's next commits went to a log nobody else could read."""
        path = tmp_path / "bot.db"
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade_schema(engine)
            repository = RequestRepository(make_sessionmaker(engine))
            fields = RequestFields("acme", "p1", "acme_to_p1", "", "SUP")
            await repository.add(fields, "U1", datetime.now(UTC))
            assert _rows_seen_by_another_process(path) == 1
            await repository.add(
                RequestFields("acme", "p2", "acme_to_p2", "", "SUP"), "U1", datetime.now(UTC)
            )
            assert _rows_seen_by_another_process(path) == 2
        finally:
            await engine.dispose()
