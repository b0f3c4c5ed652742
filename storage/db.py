"""Engine and session set-up. Nothing here runs at import time."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from bot.private_files import sqlite_files, tighten
from storage.tables import AuditRow, Base

SQLITE_POOL_SIZE = 8


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL, or ``None`` for other backends and ``:memory:``."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str) -> AsyncEngine:
    """Build the engine for ``url``.

    An SQLite file is created beforehand with mode 0600, and an existing one (and its
    write-ahead log and shared memory) is made private if it was not: it holds
    encrypted invitation codes and who approved what, nobody else's business on a
    shared host.
    """
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        # SQLite gives its side files the database file's mode, so private files stay so.
        for file in sqlite_files(path):
            tighten(file)
    if make_url(url).drivername.startswith("sqlite"):
        options: dict[str, object] = {"connect_args": {"timeout": 30}}
        if path is None:
            # In memory: one shared connection, or each session would see a new database.
            # Sessions then share a transaction too, so this is for one session at a time.
            options["poolclass"] = StaticPool
        else:
            # SQLite runs one writer at a time anyway; a fixed pool keeps each aiosqlite
            # connection (and its thread) alive instead of opening new ones under load.
            options |= {"pool_size": SQLITE_POOL_SIZE, "max_overflow": 0}
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _per_connection_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _per_connection_pragmas(dbapi_connection: object, _record: object) -> None:
    """Settings SQLite keeps per connection.

    Foreign keys are checked only when asked. ``synchronous=NORMAL`` with WAL syncs at
    checkpoints instead of at every commit: the database cannot be corrupted, and a
    power cut may lose only the last moments, which the life cycle recovers from; a
    sync per commit would cap the bot at a few dozen transitions per second.
    """
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep attributes after commit: reloading them would need implicit IO."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def has_schema(engine: AsyncEngine) -> bool:
    """Whether the bot's tables exist, without creating anything."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: sa.inspect(sync).has_table(AuditRow.__tablename__)
        )


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables, and add columns that newer versions introduced.

    Columns are only ever added, never changed or dropped, and every added column is
    nullable or has a server default, so an older database simply gains them.
    """
    if engine.dialect.name == "sqlite":
        async with engine.connect() as connection:
            # WAL lets readers (status) proceed while a transition writes; it is a
            # property of the file, so setting it once here is enough.
            await connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.run_sync(_add_missing_columns)


def _add_missing_columns(connection: Connection) -> None:
    """Columns and indexes that newer versions brought, added to an older database."""
    inspector = sa.inspect(connection)
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            index.create(connection, checkfirst=True)
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=connection.dialect)
                default = column.server_default
                clause = f" DEFAULT {default.arg}" if isinstance(default, sa.DefaultClause) else ""
                # IF NOT EXISTS: another replica starting at the same moment may add it first.
                # SQLite lacks it, but serialises schema changes on the file's write lock.
                guard = "IF NOT EXISTS " if connection.dialect.name == "postgresql" else ""
                connection.exec_driver_sql(
                    f'ALTER TABLE {table.name} ADD COLUMN {guard}"{column.name}" {kind}{clause}'
                )
