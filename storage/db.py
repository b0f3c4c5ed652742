"""Engine and session set-up. Nothing here runs at import time."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from bot.config import SettingsError
from bot.database_url import database_passwords
from bot.log import SECRET_MIN
from bot.private_files import sqlite_files, tighten
from storage.tables import AuditRow

SQLITE_POOL_SIZE = 8
CONNECT_TIMEOUT_SECONDS = 10  # a server that does not answer is reported, not waited on


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
    shared host. Its directory must exist: a typo in the path is refused, not turned
    into a new, empty database somewhere else.
    """
    path = sqlite_file(url)
    if path is not None:
        if not path.exists():
            _create_private(path)
        # SQLite gives its side files the database file's mode, so private files stay so.
        for file in sqlite_files(path):
            tighten(file)
    # A statement's parameters stay out of its errors: the errors reach the log, with
    # their tracebacks, and the parameters are people's text and sealed codes.
    if make_url(url).drivername.startswith("sqlite"):
        options: dict[str, object] = {"connect_args": {"timeout": 30}, "hide_parameters": True}
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
    try:
        return create_async_engine(
            url,
            pool_pre_ping=True,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
            hide_parameters=True,
        )
    except (ModuleNotFoundError, NoSuchModuleError) as error:
        raise DatabaseProblem(
            f"DATABASE_URL needs the driver {make_url(url).drivername!r}, which is not "
            f"installed here ({error})."
        ) from None


def require_directory(path: Path) -> None:
    """SettingsError unless the SQLite file's directory exists: a typo in the path is
    refused, not turned into a new, empty database (and key) somewhere else."""
    if not path.parent.is_dir():
        raise SettingsError(
            f"DATABASE_URL names {path}, in {path.parent}, which does not exist: create "
            "that directory (readable by this user only), or correct the path."
        )


def _create_private(path: Path) -> None:
    """Create the database file, mode 0600; SettingsError says why it cannot be."""
    require_directory(path)
    # Only a file that does not exist yet is opened here: closing a descriptor of a
    # database this process already uses would drop SQLite's locks on it.
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as error:
        raise SettingsError(
            f"DATABASE_URL names {path}, which cannot be created ({error.strerror}): "
            f"make {path.parent} writable by this user, or choose another path."
        ) from None


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


class DatabaseProblem(Exception):
    """DATABASE_URL names a database the bot cannot use; the message is one line that
    says why (a driver that is not installed, a server that does not answer)."""


# A password in the query (``?password=…``, ``&sslpassword=…``), as SQLAlchemy writes it.
_QUERY_PASSWORD = re.compile(r"([?&][^=&]*password=)[^&]*", re.IGNORECASE)
MASK = "***"


def describe(url: str) -> str:
    """``url`` without its passwords, fit for a message or a log line: the userinfo's
    and every one in the query are ``***``."""
    shown = make_url(url).render_as_string(hide_password=True)
    return _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", shown)


@contextlib.asynccontextmanager
async def explained(url: str) -> AsyncIterator[None]:
    """Turn a failure to reach the database into one DatabaseProblem line."""
    try:
        yield
    except (DBAPIError, OSError, TimeoutError) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        for password in database_passwords(url):  # should a driver ever repeat one
            if len(password) >= SECRET_MIN:
                reason = reason.replace(password, MASK)
        raise DatabaseProblem(
            f"Cannot use the database {describe(url)}: {type(cause).__name__}"
            + (f": {reason}" if reason else "")
        ) from None
