"""Shared fixtures: a clean environment and clean logging, so no test leaks into another,
and a database of each kind the bot supports."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.log import RedactSecrets
from storage import make_engine, upgrade_schema
from storage.tables import Base
from tests.postgres import PostgresCluster, cluster_for_session

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster | None]:
    """A throwaway PostgreSQL server on 127.0.0.1 for the whole run, started when a test
    first needs it; None where its binaries are not installed (see tests/postgres.py)."""
    cluster = cluster_for_session()
    try:
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()


@dataclass(frozen=True)
class PostgresDatabases:
    """Two databases reused by every PostgreSQL test, emptied before each: creating a
    database costs about 0.2 s, emptying one a few milliseconds."""

    empty: str
    """Emptied to nothing: no tables, no revision."""
    migrated: str
    """At the newest revision (as after ``exalate-bot migrate``), with every row removed."""


@pytest.fixture(scope="session")
def postgres_databases(postgres: PostgresCluster | None) -> PostgresDatabases | None:
    if postgres is None:
        return None

    async def created() -> PostgresDatabases:
        databases = PostgresDatabases(
            await postgres.create_database("exalate_empty"),
            await postgres.create_database("exalate_migrated"),
        )
        engine = make_engine(databases.migrated)
        try:
            await upgrade_schema(engine)
        finally:
            await engine.dispose()
        return databases

    return asyncio.run(created())


async def _run(url: str, *statements: str) -> None:
    """Run ``statements`` in one transaction on a connection of their own. A test that
    left a connection busy makes this fail after the lock timeout instead of hanging."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            for statement in statements:
                await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


def _postgres(databases: PostgresDatabases | None) -> PostgresDatabases:
    if databases is None:
        pytest.skip("PostgreSQL's server binaries are not installed (apt install postgresql)")
    return databases


@pytest.fixture(name="backend", params=BACKENDS)
def _backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on: each test that uses it runs on both."""
    return str(request.param)


@pytest.fixture(name="database_url")
async def _database_url(
    backend: str, tmp_path: Path, postgres_databases: PostgresDatabases | None
) -> str:
    """An empty database of ``backend``: an SQLite file, or PostgreSQL with no tables."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    url = _postgres(postgres_databases).empty
    await _run(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    return url


@pytest.fixture(name="bot_database_url")
async def _bot_database_url(
    backend: str, tmp_path: Path, postgres_databases: PostgresDatabases | None
) -> str:
    """A database ready for a bot of ``backend``: an SQLite file the bot will create, or
    PostgreSQL at the newest revision with no rows (ids start at 1 again)."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    url = _postgres(postgres_databases).migrated
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    await _run(url, f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return url


# Settings names the bot reads, plus proxies: slack_sdk ignores NO_PROXY, so a proxy
# variable would send loopback calls to the proxy.
_CLEARED = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
_PREFIXES = ("SLACK_", "JIRA_", "EXALATE_", "DATABASE_URL", "LOG_LEVEL")


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name in _CLEARED or name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    # A .env in the working directory would be read by Settings; run from an empty one.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """Undo what a test's ``configure_logging`` (often through ``main()``) did to logging.

    Its handler writes to the ``sys.stderr`` of the moment, which is pytest's capture
    file for that one test: left on the root logger, it writes to a closed file in every
    later test. The levels it sets (DEBUG, in the secrets tests) would likewise make
    later tests log, and print on failure, every SQL statement and Bolt internal.
    """
    manager = logging.Logger.manager
    before = {
        name: (logger.level, logger.filters[:])
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root = logging.getLogger()
    root_level = root.level
    yield
    for handler in root.handlers[:]:
        if any(isinstance(f, RedactSecrets) for f in handler.filters):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(root_level)
    for name, logger in manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            level, filters = before.get(name, (logging.NOTSET, []))
            if logger.level != level:
                logger.setLevel(level)  # setLevel, not assignment: it clears cached levels
            logger.filters[:] = filters
