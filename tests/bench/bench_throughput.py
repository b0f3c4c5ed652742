"""Throughput and memory: 1,000 requests submitted and approved end to end.

    python -m tests.bench.bench_throughput

Exalate answers each create after 50 ms. Every approval is clicked twice at once (a
double click), so "zero duplicates" is earned. Prints requests per second from the
first submission until the last invitation code was delivered, the counts that prove
nothing was lost or duplicated, and the bot's resident memory after start and after.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.bench.common import (
    approve_body,
    bot_command,
    bot_environment,
    burst,
    card_values,
    rss_mb,
    serve,
    servers,
    submission_body,
)

REQUESTS = 1000
CONCURRENCY = 50


def delivered(database: Path) -> int:
    """Requests whose invitation code reached the requester's DM."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM connection_request "
            "WHERE status = 'invited' AND code_dm_ref IS NOT NULL"
        ).fetchone()
        return int(row[0])


async def main() -> None:
    with servers() as (slack, jira), tempfile.TemporaryDirectory() as folder:
        async with aiohttp.ClientSession() as session:
            await session.post(jira + "/_simulator/latency", json={"create": 0.05})
        database = Path(folder) / "bench.db"
        with serve(bot_command(), bot_environment(slack, jira, database)) as (url, bot):
            started_rss = rss_mb(bot.pid)
            started = time.perf_counter()
            for first in range(1, REQUESTS + 1, CONCURRENCY):
                ids = range(first, min(REQUESTS + 1, first + CONCURRENCY))
                await burst(url, [submission_body(f"p{n}") for n in ids])
                values = card_values(database)
                clicks = [approve_body(values[n], slack + "/response/bench") for n in ids]
                await burst(url, clicks + clicks)  # each approval double-clicked
            # The bot's database belongs to another process: nothing to await but a poll.
            deadline = time.monotonic() + 300  # "lost" must be able to show up
            while delivered(database) < REQUESTS and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            finished_rss = rss_mb(bot.pid)
            codes = delivered(database)
            async with (
                aiohttp.ClientSession() as session,
                session.get(jira + "/_simulator/calls") as response,
            ):
                creates = (await response.json())["create"]
    names = {call["name"] for call in creates}
    print(f"requests submitted and approved : {REQUESTS} (each approval clicked twice)")
    print(f"elapsed                         : {elapsed:.2f} s")
    print(f"throughput                      : {REQUESTS / elapsed:.1f} requests/s")
    print(f"codes delivered by DM           : {codes}")
    print(f"Exalate create calls            : {len(creates)} ({len(names)} distinct names)")
    print(f"lost                            : {REQUESTS - len(names)}")
    print(f"duplicates                      : {len(creates) - len(names)}")
    print(f"bot RSS after start             : {started_rss:.1f} MB")
    print(f"bot RSS after the run           : {finished_rss:.1f} MB")


if __name__ == "__main__":
    asyncio.run(main())
