"""Throughput and memory: 1,000 requests submitted and approved end to end.

    python -m tests.bench.bench_throughput                          # SQLite, one bot
    python -m tests.bench.bench_throughput --database postgresql --replicas 2

Exalate answers each create after 50 ms. Every approval is clicked twice at once (a
double click), so "zero duplicates" is earned; with several replicas the two clicks of
a pair go to different replicas, and submissions alternate between them. PostgreSQL is
a throwaway cluster on 127.0.0.1 (``tests/postgres.py``), migrated with
``exalate-bot migrate`` as an operator would. A submission the bot answers "submit
again" (Jira's lists too slow under the burst) is sent again, as a person would, and
counted. Prints requests per second from the first
submission until the last invitation code was delivered, the counts that prove nothing
was lost or duplicated, and each bot's resident memory after start and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp

from tests.bench.common import (
    approve_body,
    bot_command,
    bot_environment,
    burst,
    card_values,
    handed_out,
    read,
    rss_mb,
    serve,
    servers,
    sqlite_url,
    submission_body,
)
from tests.postgres import PostgresCluster

REQUESTS = 1000
CONCURRENCY = 50


async def delivered(database_url: str) -> int:
    """Requests whose invitation code reached the requester's DM."""
    rows = await read(
        database_url,
        "SELECT count(*) FROM connection_request "
        "WHERE status = 'invited' AND code_dm_ref IS NOT NULL",
    )
    return int(rows[0][0])


@contextlib.asynccontextmanager
async def database(kind: str, folder: Path) -> AsyncIterator[str]:
    """An empty database of ``kind``, migrated by ``exalate-bot migrate``; yields its URL."""
    async with contextlib.AsyncExitStack() as stack:
        if kind == "sqlite":
            url = sqlite_url(folder / "bench.db")
        else:
            cluster = stack.enter_context(PostgresCluster())
            url = await cluster.create_database("bench")
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "migrate", env=os.environ | {"DATABASE_URL": url}
        )
        assert await migrate.wait() == 0
        yield url


async def burst_over(urls: Sequence[str], bodies: Sequence[tuple[bytes, str]]) -> None:
    """Send all ``bodies`` at once, spread over the replicas at ``urls``."""
    by_url: dict[str, list[tuple[bytes, str]]] = {url: [] for url in urls}
    for n, body in enumerate(bodies):
        by_url[urls[n % len(urls)]].append(body)
    await asyncio.gather(*(burst(url, sent) for url, sent in by_url.items() if sent))


async def run(kind: str, replicas: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        running = stack.enter_context(servers())
        slack, jira = running.slack, running.jira
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        database_url = await stack.enter_async_context(database(kind, Path(folder)))
        async with aiohttp.ClientSession() as session:
            await session.post(jira + "/_simulator/latency", json={"create": 0.05})
        environment = bot_environment(slack, jira, database_url)
        started_bots = [
            await stack.enter_async_context(serve(bot_command(), environment))
            for _ in range(replicas)
        ]
        urls = [url for url, _ in started_bots]
        started_rss = [rss_mb(bot.pid) for _, bot in started_bots]
        started = time.perf_counter()
        clicked: set[int] = set()
        sent = itertools.count()
        while len(clicked) < REQUESTS:
            batch = min(CONCURRENCY, REQUESTS - len(clicked))
            await burst_over(urls, [submission_body(f"p{next(sent)}") for _ in range(batch)])
            values = await card_values(database_url)
            fresh = sorted(set(values) - clicked)
            clicked.update(fresh)
            given = await handed_out(running.control, len(fresh))
            clicks = [approve_body(values[n], g) for n, g in zip(fresh, given, strict=True)]
            # Each approval double-clicked; with two replicas, once on each.
            await burst_over(urls, [click for click in clicks for _ in range(2)])
        refused = next(sent) - REQUESTS
        # The bot's database belongs to another process: nothing to await but a poll.
        deadline = time.monotonic() + 300  # "lost" must be able to show up
        while await delivered(database_url) < REQUESTS and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        finished_rss = [rss_mb(bot.pid) for _, bot in started_bots]
        codes = await delivered(database_url)
        async with (
            aiohttp.ClientSession() as session,
            session.get(jira + "/_simulator/calls") as response,
        ):
            creates = (await response.json())["create"]
    names = {call["name"] for call in creates}
    print(f"database, replicas              : {kind}, {replicas}")
    print(f"requests submitted and approved : {REQUESTS} (each approval clicked twice)")
    print(f"submissions to send again       : {refused} (answered 'submit again')")
    print(f"elapsed                         : {elapsed:.2f} s")
    print(f"throughput                      : {REQUESTS / elapsed:.1f} requests/s")
    print(f"codes delivered by DM           : {codes}")
    print(f"Exalate create calls            : {len(creates)} ({len(names)} distinct names)")
    print(f"lost                            : {REQUESTS - len(names)}")
    print(f"duplicates                      : {len(creates) - len(names)}")
    print(f"bot RSS after start             : {', '.join(f'{mb:.1f}' for mb in started_rss)} MB")
    print(f"bot RSS after the run           : {', '.join(f'{mb:.1f}' for mb in finished_rss)} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--replicas", type=int, default=1)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.database, arguments.replicas))


if __name__ == "__main__":
    main()
