"""The schema's version: Alembic revisions run by the bot itself.

``upgrade_schema`` brings a database to the newest revision, once however many
processes start at the same moment: PostgreSQL serialises them on an advisory lock,
SQLite on a lock of the database's folder. A database made by ``create_schema`` before
migrations existed carries the baseline's tables but no revision: it is brought up to
the baseline by adding the columns and indexes it may lack, stamped, and upgraded like
any other, without touching a row.

On SQLite an upgrade is one transaction, so a revision that fails halfway leaves the
file as it was; foreign keys are checked at its end rather than enforced during it,
because SQLite rebuilds a table to change its constraints (``_references_unchecked``).
The ``alembic`` command upgrades the same way (``upgrading``, from ``env.py``).

``state_at`` and ``upgrade_sql`` answer ``exalate-bot migrate --current`` and ``--sql``:
an operator looks before upgrading, so they change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.db import describe, explained, make_engine, sqlite_file

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
MIGRATE_COMMAND = "exalate-bot migrate"
# Any constant: the advisory lock that lets one replica at a time upgrade PostgreSQL.
_UPGRADE_LOCK_KEY = 0x65786C74

# Columns that create_schema added in place to databases older than the baseline. An
# adopted database may lack any of them; each is nullable or has a default.
_LATE_BASELINE_COLUMNS: dict[str, list[sa.Column[object]]] = {
    "connection_request": [
        sa.Column("exalate_status", sa.String(64)),
        sa.Column("reminders_sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("code_dm_ref", sa.String(128)),
        sa.Column("missed_polls", sa.Integer, nullable=False, server_default="0"),
        sa.Column("name_absent_at", sa.DateTime(timezone=True)),
        sa.Column("last_attempt", sa.String(16)),
    ],
}

# Indexes create_schema added to existing databases later than their tables.
_LATE_BASELINE_INDEXES = {
    "ix_connection_request_status_created": "connection_request (status, created_at)",
}


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database stands: its revision (None: none recorded) and the newest one."""

    current: str | None
    head: str
    before_migrations: bool
    """Tables made by ``create_schema``, not yet adopted."""

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        """One line for a person: where it stands and what to run."""
        if self.at_head:
            return f"at the newest revision ({self.head})"
        if self.before_migrations:
            return f"made before migrations: run `{MIGRATE_COMMAND}` to adopt it"
        if self.current is None:
            return f"empty: run `{MIGRATE_COMMAND}` to create the tables"
        return (
            f"at revision {self.current}, this version needs {self.head}: run `{MIGRATE_COMMAND}`"
        )


class SchemaBehind(Exception):
    """The database is not at the revision this version of the bot needs."""


class NoOfflineSql(Exception):
    """Alembic cannot write this upgrade's SQL without reaching the database: on SQLite
    a revision that changes a constraint copies the table, which needs it read first."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of the bot knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "storage/migrations has no revision"
    return head


def state_of(connection: Connection) -> SchemaState:
    """Where the database behind ``connection`` stands."""
    inspector = sa.inspect(connection)
    current = MigrationContext.configure(connection).get_current_revision()
    legacy = current is None and inspector.has_table("connection_request")
    return SchemaState(current, head_revision(), legacy)


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Where ``engine``'s database stands, changing nothing."""
    async with engine.connect() as connection:
        return await connection.run_sync(state_of)


async def state_at(url: str) -> SchemaState:
    """Where the database at ``url`` stands, for a person who asked: changing nothing,
    not even creating an SQLite file that does not exist yet."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return SchemaState(None, head_revision(), before_migrations=False)
    engine = make_engine(url)
    try:
        async with explained(url):
            return await schema_state(engine)
    finally:
        await engine.dispose()


def upgrade_sql(url: str, state: SchemaState) -> str:
    """The SQL that ``exalate-bot migrate`` would run on the database at ``url``, which
    stands at ``state``, written for its dialect without reaching it.

    A database made before migrations is first adopted (columns it may lack added, then
    stamped at the baseline), which depends on what it holds: that step is named, and
    the SQL starts at the baseline.
    """
    lines = [f"-- {describe(url)} is {state.describe()}"]
    if state.at_head:
        return "\n".join([*lines, "-- Nothing to run."])
    start = BASELINE if state.before_migrations else state.current
    if state.before_migrations:
        lines.append(f"-- Adopting it adds the columns it may lack and stamps {BASELINE}; then:")
    output = io.StringIO()
    config = _config()
    config.output_buffer = output
    config.attributes["url"] = url
    try:
        command.upgrade(config, f"{start}:head" if start else "head", sql=True)
    except CommandError as error:
        if "--sql mode" not in str(error):
            raise NoOfflineSql(f"Alembic: {error}") from None
        raise NoOfflineSql(
            f"The SQL of revision {_last_revision_begun(output.getvalue())} cannot be "
            f"written for {make_url(url).get_backend_name()} without reading the database "
            "(it copies a table to change it): upgrade a copy of the database with "
            f"`{MIGRATE_COMMAND}` instead."
        ) from None
    return "\n".join([*lines, output.getvalue().rstrip()])


def _last_revision_begun(sql: str) -> str:
    """The revision whose SQL was being written when Alembic stopped: the last of its
    "-- Running upgrade 0002 -> 0003" lines."""
    begun = [line.rsplit(" ", 1)[-1] for line in sql.splitlines() if "Running upgrade" in line]
    return begun[-1] if begun else "?"


async def upgrade_schema(engine: AsyncEngine, target: str = "head") -> SchemaState:
    """Bring the database to the newest revision (or ``target``); returns where it
    stood before."""
    async with upgrading(engine) as connection:
        before = await connection.run_sync(_upgrade, target)
    if not before.at_head:
        log.info("schema_upgraded from=%s to=%s", before.current or "none", before.head)
    return before


@contextlib.asynccontextmanager
async def upgrading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection to run revisions on, as the only upgrader, in one transaction that
    commits when the block ends.

    Shared by the bot's own upgrade and by the ``alembic`` command (``env.py``), so an
    operator's ``alembic upgrade`` queues behind replicas upgrading at start, and a
    revision that fails halfway leaves an SQLite file as it was in both.
    """
    async with _one_upgrader(engine):
        if sqlite_file(str(engine.url)) is not None:
            async with engine.connect() as connection:
                # WAL lets readers (status) proceed while a transition writes; it is a
                # property of the file, and cannot change inside a transaction. Under the
                # upgraders' lock: a switch racing another process's upgrade transaction
                # would deadlock on SQLite's locks until the busy timeout.
                await connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        async with (
            engine.connect() as connection,
            _references_unchecked(connection),
            connection.begin(),
        ):
            if engine.dialect.name == "postgresql":
                lock = sa.func.pg_advisory_xact_lock(_UPGRADE_LOCK_KEY)
                await connection.execute(sa.select(lock))
            elif engine.dialect.name == "sqlite":
                # The driver would begin only at the first row written, and commit a
                # revision's DDL before it statement by statement: a table rebuild that
                # failed halfway would stay half done. IMMEDIATE waits for any writer
                # now instead of failing on it halfway.
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield connection
            await connection.run_sync(_references_checked)


def _upgrade(connection: Connection, target: str) -> SchemaState:
    before = state_of(connection)
    config = _config(connection)
    if before.before_migrations:
        _add_late_baseline_parts(connection)
        command.stamp(config, BASELINE)
    command.upgrade(config, target)
    return before


def _references_checked(connection: Connection) -> None:
    """On SQLite, refuse to commit rows that refer to nothing: foreign keys were off
    while the revisions ran (``_references_unchecked``)."""
    if connection.dialect.name == "sqlite" and (
        broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    ):
        raise RuntimeError(f"foreign_key_check: {len(broken)} row(s) refer to nothing; undone")


@contextlib.asynccontextmanager
async def _references_unchecked(connection: AsyncConnection) -> AsyncIterator[None]:
    """On SQLite, foreign keys off while the revisions run; ``_upgrade`` checks them
    all before its commit.

    A revision that changes a constraint rebuilds the table (SQLite cannot alter one in
    place): it drops the old table while audit rows still refer to it, which SQLite
    refuses with foreign keys on, deferred or not. Turning them off is SQLite's own
    procedure for such changes; the pragma is ignored inside a transaction, so it is set
    here, before the upgrade's, and not in a revision.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    await connection.commit()
    try:
        yield
    finally:
        await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        await connection.commit()


def _add_late_baseline_parts(connection: Connection) -> None:
    """The columns and indexes a database made by create_schema may lack."""
    for table, columns in _LATE_BASELINE_COLUMNS.items():
        present = {column["name"] for column in sa.inspect(connection).get_columns(table)}
        for column in columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=connection.dialect)
            default = column.server_default
            clause = f" DEFAULT {default.arg}" if isinstance(default, sa.DefaultClause) else ""
            connection.exec_driver_sql(
                f'ALTER TABLE {table} ADD COLUMN "{column.name}" {kind}{clause}'
            )
    for index, on in _LATE_BASELINE_INDEXES.items():
        connection.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {index} ON {on}")


@contextlib.asynccontextmanager
async def _one_upgrader(engine: AsyncEngine) -> AsyncIterator[None]:
    """On an SQLite file, hold an exclusive lock on its folder while upgrading.

    Not on the database file itself: closing any descriptor of that file drops every
    POSIX lock this process holds on it, SQLite's own included, after which other
    processes no longer see this one's writes. ``flock`` on the folder serialises the
    upgraders and leaves the database alone. PostgreSQL upgraders wait on an advisory
    lock in their transaction instead.
    """
    path = sqlite_file(str(engine.url))
    if path is None:
        yield
        return
    descriptor = os.open(path.parent, os.O_RDONLY)
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


async def prepare_schema(engine: AsyncEngine, *, upgrade: bool) -> None:
    """Upgrade the database if allowed, else make sure it is at the newest revision.

    Raises SchemaBehind with the command to run when it is not.
    """
    if upgrade:
        await upgrade_schema(engine)
        return
    state = await schema_state(engine)
    if not state.at_head:
        raise SchemaBehind(f"The database is {state.describe()}, or start with --migrate.")
