"""Engine and session set-up. Nothing here runs at import time."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from storage.tables import Base


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL, or ``None`` for other backends and ``:memory:``."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str) -> AsyncEngine:
    """Build the engine for ``url``.

    An SQLite file is created beforehand with mode 0600: it holds encrypted invitation
    codes and who approved what, which is nobody else's business on a shared host.
    """
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    if make_url(url).drivername.startswith("sqlite"):
        options: dict[str, object] = {"connect_args": {"timeout": 30}}
        if path is None:  # in memory: one shared connection, or each session sees a new DB
            options["poolclass"] = StaticPool
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    """WAL lets readers (status) proceed while a transition writes."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep attributes after commit: reloading them would need implicit IO."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables; existing ones are left as they are."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
