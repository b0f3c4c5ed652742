"""Ack latency under concurrent load, the bot against a bare Bolt app.

    python -m tests.bench.bench_ack

N concurrent ``/exalate connect`` commands, N concurrent Approve clicks and N
concurrent ``/exalate status`` commands (answered in the ack, with 50 open requests
pending) (N = 1, 10, 50, 200; bursts repeated until each N has at least 200 samples),
with Exalate's create call answering after 2 s. Prints p50/p95/p99/max ack time in ms
for the bot and for a bare Bolt ``AsyncApp`` that only acks, and the ratio of their p99s.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from tests.bench.common import (
    approve_body,
    bare_bolt_command,
    bot_command,
    bot_environment,
    burst,
    card_values,
    command_body,
    percentiles,
    serve,
    servers,
    sqlite_url,
    submission_body,
)

SIZES = (1, 10, 50, 200)
SAMPLES = 200
PENDING_FOR_STATUS = 50
KINDS = ("command", "approve", "status")


def rounds(size: int) -> int:
    return max(1, SAMPLES // size)


async def measure(url: str, slack: str, values: Iterator[str]) -> dict[str, dict[int, list[float]]]:
    """Ack times per kind and burst size; ``values`` are Approve buttons of fresh requests."""
    results: dict[str, dict[int, list[float]]] = {"command": {}, "approve": {}}
    await burst(url, [command_body("connect")] * 20)  # warm up
    for size in SIZES:
        samples: list[float] = []
        for _ in range(rounds(size)):
            samples += await burst(url, [command_body("connect")] * size)
        results["command"][size] = samples
        samples = []
        for _ in range(rounds(size)):
            clicks = [approve_body(next(values), slack + "/response/bench") for _ in range(size)]
            samples += await burst(url, clicks)
        results["approve"][size] = samples
    return results


async def measure_status(url: str) -> dict[int, list[float]]:
    """Ack times of ``/exalate status`` bursts, by burst size."""
    await burst(url, [command_body("status")] * 20)  # warm up
    results: dict[int, list[float]] = {}
    for size in SIZES:
        samples: list[float] = []
        for _ in range(rounds(size)):
            samples += await burst(url, [command_body("status")] * size)
        results[size] = samples
    return results


async def prepare(url: str, count: int) -> None:
    """Submit ``count`` valid requests, a few at a time, so approvals have targets."""
    for start in range(0, count, 25):
        await burst(url, [submission_body(f"p{n}") for n in range(start, min(count, start + 25))])


async def main() -> None:
    needed = sum(rounds(size) * size for size in SIZES)
    with servers() as (slack, jira), tempfile.TemporaryDirectory() as folder:
        async with aiohttp.ClientSession() as session:
            latency = float(os.environ.get("BENCH_CREATE_LATENCY", "2.0"))
            await session.post(jira + "/_simulator/latency", json={"create": latency})
        database = Path(folder) / "bench.db"
        environment = bot_environment(slack, jira, sqlite_url(database))
        with serve(bot_command(), environment) as (url, _process):
            await prepare(url, needed)
            values = await card_values(sqlite_url(database))
            bot = await measure(url, slack, (values[n] for n in sorted(values)))
        status_database = sqlite_url(Path(folder) / "status.db")
        environment = bot_environment(slack, jira, status_database)
        with serve(bot_command(), environment) as (url, _process):
            await prepare(url, PENDING_FOR_STATUS)
            bot["status"] = await measure_status(url)
        with serve(bare_bolt_command(), environment) as (url, _process):
            bare = await measure(url, slack, itertools.repeat("1:0000000000000000"))
            bare["status"] = await measure_status(url)
    print(
        f"{'kind':8} {'N':>4} {'samples':>7} | {'bot p50':>8} {'p95':>7} {'p99':>7} {'max':>7}"
        f" | {'bare p50':>8} {'p95':>7} {'p99':>7} | {'p99 ratio':>9}"
    )
    for kind in KINDS:
        for size in SIZES:
            ours, theirs = percentiles(bot[kind][size]), percentiles(bare[kind][size])
            print(
                f"{kind:8} {size:>4} {len(bot[kind][size]):>7} | {ours['p50']:>8.1f} "
                f"{ours['p95']:>7.1f} {ours['p99']:>7.1f} {ours['max']:>7.1f} | "
                f"{theirs['p50']:>8.1f} {theirs['p95']:>7.1f} {theirs['p99']:>7.1f} | "
                f"{ours['p99'] / theirs['p99']:>9.2f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
