"""The schema's revisions on both databases: upgrade, adoption, one upgrader at a time."""

from __future__ import annotations

import asyncio
import contextlib
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
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.approvals.model import DEFAULT_SITE, RequestFields, Status
from storage import (
    NameTaken,
    RequestRepository,
    SchemaBehind,
    make_engine,
    make_sessionmaker,
    prepare_schema,
    schema_state,
    upgrade_schema,
)
from storage.schema import BASELINE, _config, head_revision
from storage.tables import Base

MADE_BY_CREATE_SCHEMA = Path(__file__).parent / "data" / "created_by_create_schema.db"
MADE_AT_0002 = Path(__file__).parent / "data" / "made_at_0002.db"


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
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            assert (await upgrade_schema(engine)).before_migrations
            assert (await schema_state(engine)).at_head
        finally:
            await engine.dispose()
        after = _as_dicts(path)
        was = _as_dicts(MADE_BY_CREATE_SCHEMA)
        assert len(after["connection_request"]) == 5
        assert len(after["audit_event"]) == 9
        assert after["audit_event"] == was["audit_event"]
        # Each request keeps every value it had, and the new columns say: nobody is
        # creating it, it is in the default site, its problem has no detail, and no
        # form is known to have made it; the default approvers decide it, nobody has
        # approved it, nobody was called in. A card never posted is the outbox's to post.
        unposted = _cards_for_the_outbox(was["connection_request"])
        for old, new in zip(was["connection_request"], after["connection_request"], strict=True):
            added = {name: new.pop(name) for name in set(new) - set(old)}
            assert added == {
                "initiated_by": None,
                "site": "default",
                "error_detail": None,
                "view_id": None,
                "route": None,
                "approved_by": "",
                "escalated_at": None,
            }
            if old["id"] in unposted:
                old["card_ref"] = "posting:outbox"
            assert new == old
        assert _outbox(path) == [(request_id, "card", "post_card") for request_id in unposted]

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


def _cards_for_the_outbox(requests: list[dict[str, object]]) -> list[object]:
    """The requests awaiting approval whose card was never posted (or left mid-post)."""
    return [
        r["id"]
        for r in requests
        if r["status"] == "pending_approval"
        and (r["card_ref"] is None or str(r["card_ref"]).startswith("posting:"))
    ]


def _outbox(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT request_id, lane, say FROM outbox ORDER BY id").fetchall()


def _as_dicts(path: Path) -> dict[str, list[dict[str, object]]]:
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        return {
            table: [
                dict(row)
                for row in connection.execute(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608
            ]
            for table in ("connection_request", "audit_event")
        }


async def _upgraded_copy(source: Path, tmp_path: Path) -> AsyncEngine:
    path = tmp_path / "bot.db"
    shutil.copy(source, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    before = await upgrade_schema(engine)
    assert before.current == "0002"
    return engine


class TestUpgradingAFileMadeAt0002:
    """tests/storage/data/made_at_0002.db is a database of the release before sites.

    Made by a throwaway script: ``upgrade_schema(make_engine(url), "0002")`` on a new
    file, then with plain sqlite3 six requests (1 pending approval with a card; 2 invited,
    with a sealed code, a reminder and its DM; 3 rejected; 4 initiating after an
    uncertain attempt, by replica-a; 5 active; 6 failed) and their 16 audit events, each
    column given as that release's code writes it, and the journal set back to DELETE.
    """

    async def test_every_request_lands_in_the_default_site_and_nothing_else_changes(
        self, tmp_path: Path
    ) -> None:
        before = _as_dicts(MADE_AT_0002)
        engine = await _upgraded_copy(MADE_AT_0002, tmp_path)
        try:
            assert (await schema_state(engine)).at_head
            assert await _differences_from_the_models(engine) == []
            async with engine.connect() as connection:
                integrity = await connection.exec_driver_sql("PRAGMA integrity_check")
                assert integrity.scalar() == "ok"
                foreign = await connection.exec_driver_sql("PRAGMA foreign_key_check")
                assert foreign.all() == []
        finally:
            await engine.dispose()
        after = _as_dicts(tmp_path / "bot.db")
        assert len(before["connection_request"]) == 6
        assert len(before["audit_event"]) == 16
        assert after["audit_event"] == before["audit_event"]
        assert [row.pop("site") for row in after["connection_request"]] == [DEFAULT_SITE] * 6
        assert [row.pop("error_detail") for row in after["connection_request"]] == [None] * 6
        assert [row.pop("view_id") for row in after["connection_request"]] == [None] * 6
        for column, value in (("route", None), ("approved_by", ""), ("escalated_at", None)):
            assert [row.pop(column) for row in after["connection_request"]] == [value] * 6
        assert _cards_for_the_outbox(before["connection_request"]) == []  # its one is posted
        assert after["connection_request"] == before["connection_request"]
        assert _outbox(tmp_path / "bot.db") == []

    async def test_an_open_name_is_refused_in_its_site_and_free_in_another(
        self, tmp_path: Path
    ) -> None:
        engine = await _upgraded_copy(MADE_AT_0002, tmp_path)
        try:
            repository = RequestRepository(make_sessionmaker(engine))
            pending = await repository.get(1)
            assert pending is not None
            assert pending.fields.site == DEFAULT_SITE
            emea = await repository.add(
                RequestFields("acme", "partner", "acme_to_partner", "", "SUP", "emea"),
                "U9",
                datetime.now(UTC),
            )
            assert emea.id == 7
            with pytest.raises(NameTaken):
                await repository.add(pending.fields, "U9", datetime.now(UTC))
            with pytest.raises(NameTaken):  # invited, under another case
                await repository.add(
                    RequestFields("acme", "beta", "ACME_TO_BETA", "", "SUP"),
                    "U9",
                    datetime.now(UTC),
                )
            rejected = RequestFields("acme", "gamma", "acme_to_gamma", "", "SUP")
            assert (await repository.add(rejected, "U9", datetime.now(UTC))).id == 8
            assert await repository.sites_named("acme_to_partner") == [DEFAULT_SITE, "emea"]
            assert await repository.claimed_connections(DEFAULT_SITE) == (
                {"101", "102"},
                {"acme_to_delta"},
            )
            assert await repository.invitation_code(2) == b"gAAAA-sealed-0002"
        finally:
            await engine.dispose()

    async def test_an_upgrade_that_fails_leaves_the_file_as_it_was(self, tmp_path: Path) -> None:
        """The table is rebuilt in one transaction: a failure (here the final check of
        references, on an audit row of a request that does not exist) undoes all of it,
        and the upgrade can be run again."""
        path = tmp_path / "bot.db"
        shutil.copy(MADE_AT_0002, path)
        with contextlib.closing(sqlite3.connect(path)) as database, database:
            database.execute(
                "INSERT INTO audit_event (request_id, at, actor, to_status) "
                "VALUES (99, '2026-10-06 09:00:00.000000', 'U0', 'expired')"
            )
        before = _rows(path)
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            with pytest.raises(RuntimeError, match=r"1 row\(s\) refer to nothing; undone"):
                await upgrade_schema(engine)
            assert (await schema_state(engine)).current == "0002"
            assert _rows(path) == before
            async with engine.begin() as connection:
                tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
                assert not [table for table in tables if table.startswith("_alembic")]
                await connection.exec_driver_sql("DELETE FROM audit_event WHERE request_id = 99")
            await upgrade_schema(engine)
            assert (await schema_state(engine)).at_head
        finally:
            await engine.dispose()


async def _downgrade(engine: AsyncEngine, target: str) -> None:
    """What an operator going back a release would run, on SQLite in one transaction
    with foreign keys off, as an upgrade is."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()
        async with connection.begin():
            if engine.dialect.name == "sqlite":
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            await connection.run_sync(lambda sync: command.downgrade(_config(sync), target))


class TestDowngradingSites:
    async def test_the_downgrade_restores_the_unique_name_and_keeps_every_request(
        self, engine: AsyncEngine
    ) -> None:
        """Back at 0002 the sites are gone (upgrading again puts every request in the
        default one) and a name is unique across the whole table again."""
        await upgrade_schema(engine)
        repository = RequestRepository(make_sessionmaker(engine))
        now = datetime.now(UTC)
        await repository.add(RequestFields("acme", "p", "acme_to_p", "", "SUP"), "U1", now)
        emea = await repository.add(
            RequestFields("acme", "p", "acme_to_p", "", "SUP", "emea"), "U1", now
        )
        await repository.transition(emea, Status.REJECTED, actor="U2", at=now, reason="no")
        await _downgrade(engine, "0002")
        async with engine.connect() as connection:
            columns, unique = await connection.run_sync(
                lambda sync: (
                    [
                        column["name"]
                        for column in sa.inspect(sync).get_columns("connection_request")
                    ],
                    sa.inspect(sync).get_unique_constraints("connection_request"),
                )
            )
        assert "site" not in columns
        assert [(u["name"], u["column_names"]) for u in unique] == [
            ("uq_connection_request_open_name", ["open_name"])
        ]
        await upgrade_schema(engine)
        assert await _differences_from_the_models(engine) == []
        assert [r.fields.site for r in (await repository.page(limit=5)).items] == [
            DEFAULT_SITE,
            DEFAULT_SITE,
        ]

    async def test_the_downgrade_refuses_one_name_open_in_two_sites(
        self, engine: AsyncEngine
    ) -> None:
        await upgrade_schema(engine)
        repository = RequestRepository(make_sessionmaker(engine))
        for site in (DEFAULT_SITE, "emea"):
            await repository.add(
                RequestFields("acme", "p", "acme_to_p", "", "SUP", site), "U1", datetime.now(UTC)
            )
        with pytest.raises(IntegrityError):
            await _downgrade(engine, "0002")
        assert (await schema_state(engine)).at_head


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
