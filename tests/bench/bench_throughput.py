"""Throughput and memory: 1,000 requests submitted and approved end to end.

    python -m tests.bench.bench_throughput                          # SQLite, one bot
    python -m tests.bench.bench_throughput --database postgresql --replicas 2
    python -m tests.bench.bench_throughput --requests 50            # a quick check

Exalate answers each create after 50 ms. Every approval is clicked twice at once (a
double click), so "zero duplicates" is earned; with several replicas the two clicks of
a pair go to different replicas, and submissions alternate between them. PostgreSQL is
a throwaway cluster on 127.0.0.1 (``tests/postgres.py``), migrated with
``exalate-bot migrate`` as an operator would.

A slow machine makes the bot answer some forms with an error ("submit again": Jira or
Slack too slow under the burst), or answer none in Slack's 3 s (Bolt then says 404).
Such a form is refused, not stored: it is counted by its error text and sent again as a
person would (the same form, so a form stored after all is not stored twice), up to
``ATTEMPTS`` times, then given up; the run always completes and says how many were
refused and why. Prints requests per second from the first submission until the last
invitation code was delivered, the counts that prove nothing was lost or duplicated,
and each bot's resident memory after start and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.bench.common import (
    answers,
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
ATTEMPTS = 5
"""Times a form is sent before it is given up: a person would not try forever either."""
NO_ACK = "HTTP {status} (no answer within Slack's 3 s)"


def refusal(status: int, text: str) -> str | None:
    """Why the bot refused a form, from its answer: the error texts shown in the form,
    or the HTTP status; None when it accepted it (an empty ack, or a "Saving…" form
    that is stored a moment later)."""
    if status != 200:
        return NO_ACK.format(status=status)
    if not text:
        return None
    try:
        answer = json.loads(text)
    except ValueError:
        return f"not an answer Slack reads: {text[:60]}"
    if answer.get("response_action") != "errors":
        return None
    return " / ".join(sorted(answer["errors"].values()))


@dataclass
class Form:
    """A request form and the times the bot refused it."""

    body: tuple[bytes, str]
    refused: int = 0


@dataclass
class Outcomes:
    """What became of the forms sent."""

    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Each refusal (a form refused three times counts three), by its error text."""
    given_up: int = 0

    def record(self, forms: Sequence[Form], kinds: Sequence[str | None]) -> list[Form]:
        """Count the answers to ``forms``; the forms to send again."""
        again = []
        for form, kind in zip(forms, kinds, strict=True):
            if kind is None:
                self.accepted += 1
                continue
            self.refused[kind] += 1
            form.refused += 1
            if form.refused < ATTEMPTS:
                again.append(form)
            else:
                self.given_up += 1
        return again


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


async def burst_over(urls: Sequence[str], bodies: Sequence[tuple[bytes, str]]) -> int:
    """Send all ``bodies`` at once, spread over the replicas at ``urls``; how many were
    not acked in time (a click Bolt gave up on; its double may still decide)."""
    by_url: dict[str, list[tuple[bytes, str]]] = {url: [] for url in urls}
    for n, body in enumerate(bodies):
        by_url[urls[n % len(urls)]].append(body)
    timed = await asyncio.gather(
        *(burst(url, sent, refused_is_late=True) for url, sent in by_url.items() if sent)
    )
    return sum(math.isinf(seconds) for times in timed for seconds in times)


async def submit_over(urls: Sequence[str], forms: Sequence[Form]) -> list[str | None]:
    """Send all ``forms`` at once, alternating between the replicas; why each was
    refused (None: accepted)."""
    sent = [(urls[n % len(urls)], form.body) for n, form in enumerate(forms)]
    return [refusal(status, text) for status, text in await answers(sent)]


@dataclass
class Approvals:
    """Every stored request approved once, by a double click."""

    database_url: str
    control: str
    urls: Sequence[str]
    clicked: set[int] = field(default_factory=set)
    late_clicks: int = 0

    async def approve_new(self) -> None:
        """Double-click Approve on each request stored since the last call."""
        values = await card_values(self.database_url)
        fresh = sorted(set(values) - self.clicked)
        if not fresh:
            return
        self.clicked.update(fresh)
        given = await handed_out(self.control, len(fresh))
        clicks = [approve_body(values[n], g) for n, g in zip(fresh, given, strict=True)]
        # Each approval double-clicked; with two replicas, once on each.
        self.late_clicks += await burst_over(self.urls, [c for c in clicks for _ in range(2)])


async def submit_and_approve(requests: int, approvals: Approvals) -> Outcomes:
    """Send ``requests`` forms, ``CONCURRENCY`` at a time, each refused one again in a
    later batch; approve what is stored after each batch."""
    outcomes = Outcomes()
    waiting = [Form(submission_body(f"p{n}")) for n in range(requests)]
    while waiting:
        batch, waiting = waiting[:CONCURRENCY], waiting[CONCURRENCY:]
        waiting += outcomes.record(batch, await submit_over(approvals.urls, batch))
        await approvals.approve_new()
    # A form answered "Saving…" is stored a moment later, by the bot's process: nothing
    # to await but a poll of its database.
    deadline = time.monotonic() + 60
    while len(approvals.clicked) < outcomes.accepted and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        await approvals.approve_new()
    return outcomes


async def run(kind: str, replicas: int, requests: int) -> None:
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
        approvals = Approvals(database_url, running.control, [url for url, _ in started_bots])
        started_rss = [rss_mb(bot.pid) for _, bot in started_bots]
        started = time.perf_counter()
        outcomes = await submit_and_approve(requests, approvals)
        stored = len(approvals.clicked)
        # The bot's database belongs to another process: nothing to await but a poll.
        deadline = time.monotonic() + 300  # "lost" must be able to show up
        while await delivered(database_url) < stored and time.monotonic() < deadline:  # noqa: ASYNC110
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
    print(f"requests submitted and approved : {stored} of {requests} (each approval clicked twice)")
    print_refusals(outcomes)
    print(f"Approve clicks not acked in 3 s : {approvals.late_clicks}")
    print(f"elapsed                         : {elapsed:.2f} s")
    print(f"throughput                      : {stored / elapsed:.1f} requests/s")
    print(f"codes delivered by DM           : {codes}")
    print(f"Exalate create calls            : {len(creates)} ({len(names)} distinct names)")
    print(f"lost                            : {stored - len(names)}")
    print(f"duplicates                      : {len(creates) - len(names)}")
    print(f"bot RSS after start             : {', '.join(f'{mb:.1f}' for mb in started_rss)} MB")
    print(f"bot RSS after the run           : {', '.join(f'{mb:.1f}' for mb in finished_rss)} MB")


def print_refusals(outcomes: Outcomes) -> None:
    """How many forms the bot refused, why, and how many were given up."""
    total = sum(outcomes.refused.values())
    print(f"forms refused                   : {total} (sent again, up to {ATTEMPTS} times each)")
    for kind, count in outcomes.refused.most_common():
        print(f"  {count:>5} x {kind}")
    print(f"forms given up                  : {outcomes.given_up}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument(
        "--requests", type=int, default=REQUESTS, help="forms to submit (default: %(default)s)"
    )
    arguments = parser.parse_args()
    asyncio.run(run(arguments.database, arguments.replicas, arguments.requests))


if __name__ == "__main__":
    main()
