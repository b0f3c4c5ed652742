"""The throwaway PostgreSQL server of tests/postgres.py: databases, loopback only, cleanup."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.postgres import HOST, PostgresCluster, cluster_for_session

_LISTEN = "0A"
"""A listening socket's state in /proc/net/tcp."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    started = cluster_for_session()
    if started is None:
        pytest.skip("no PostgreSQL server here (EXALATE_TEST_POSTGRES=1 to require one)")
    try:
        yield started
    finally:
        started.stop()


@asynccontextmanager
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    created = create_async_engine(url)
    try:
        yield created
    finally:
        await created.dispose()


async def scalar(url: str, statement: str) -> object:
    async with engine(url) as connected, connected.connect() as connection:
        return (await connection.execute(sa.text(statement))).scalar_one()


def listeners(port: int) -> list[tuple[str, str]] | None:
    """(table, hex local address) of every socket listening on ``port``, IPv4 and IPv6.

    None where there is no Linux /proc/net to read them from.
    """
    if not Path("/proc/net/tcp").exists():
        return None
    found = []
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == _LISTEN and int(port_hex, 16) == port:
                found.append((table, address))
    return found


async def test_databases_are_separate_and_reachable(cluster: PostgresCluster) -> None:
    first = await cluster.create_database()
    second = await cluster.create_database()
    assert first != second
    assert first.startswith(f"postgresql+asyncpg://postgres@{HOST}:{cluster.port}/test_")
    for url in (first, second):
        assert await scalar(url, "SELECT 1") == 1

    async with engine(first) as connected, connected.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE marker (id int)"))
        await connection.execute(sa.text("INSERT INTO marker VALUES (7)"))
    assert await scalar(second, "SELECT to_regclass('marker') IS NULL") is True


async def test_listens_on_loopback_only(cluster: PostgresCluster) -> None:
    assert await scalar(cluster.admin_url, "SHOW listen_addresses") == HOST
    assert await scalar(cluster.admin_url, "SELECT host(inet_server_addr())") == HOST
    found = listeners(cluster.port)
    if found is not None:
        assert found == [("tcp", "0100007F")]  # 127.0.0.1 only, written little-endian
    assert (cluster.socket_directory / f".s.PGSQL.{cluster.port}").is_socket()
    assert cluster.socket_directory.is_relative_to(cluster.directory)


async def test_stop_removes_the_server_and_its_directory(cluster: PostgresCluster) -> None:
    # A second cluster beside the session's: its own directory and port.
    with PostgresCluster() as other:
        directory, port = other.directory, other.port
        assert directory != cluster.directory
        assert port != cluster.port
        assert await scalar(await other.create_database(), "SELECT 1") == 1
    assert not directory.exists()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect((HOST, port))
    other.stop()  # a second stop does nothing
    assert await scalar(cluster.admin_url, "SELECT 1") == 1
