"""Shared fixtures: a clean environment and clean logging, so no test leaks into another,
and a database of each kind the bot supports."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.log import RedactSecrets
from storage import make_engine, upgrade_schema
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


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresCluster | None) -> str | None:
    """A PostgreSQL database at the newest revision, copied for each bot under test (as
    an operator would have run ``exalate-bot migrate``): copying is faster than upgrading."""
    if postgres is None:
        return None
    name = "exalate_template"

    async def migrated() -> None:
        engine = make_engine(await postgres.create_database(name))
        try:
            await upgrade_schema(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrated())
    return name


@pytest.fixture(name="backend", params=BACKENDS)
def _backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on: each test that uses it runs on both."""
    return str(request.param)


@pytest.fixture(name="database_url")
async def _database_url(
    backend: str, tmp_path: Path, postgres: PostgresCluster | None
) -> AsyncIterator[str]:
    """An empty database of ``backend``: an SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    if postgres is None:
        pytest.skip("PostgreSQL's server binaries are not installed (apt install postgresql)")
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield await postgres.create_database(name)
    await postgres.drop_database(name)


@pytest.fixture(name="bot_database_url")
async def _bot_database_url(
    backend: str, tmp_path: Path, postgres: PostgresCluster | None, postgres_template: str | None
) -> AsyncIterator[str]:
    """A database ready for a bot of ``backend``: an SQLite file the bot will create, or a
    PostgreSQL database already at the newest revision."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    if postgres is None or postgres_template is None:
        pytest.skip("PostgreSQL's server binaries are not installed (apt install postgresql)")
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield await postgres.create_database(name, template=postgres_template)
    await postgres.drop_database(name)


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
