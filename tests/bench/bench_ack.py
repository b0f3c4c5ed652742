"""Ack latency under concurrent load, the bot against bare Bolt apps, in both transports.

    python -m tests.bench.bench_ack [--transport http|socket] [--kind command|approve|status]

(both transports and every kind by default)

N concurrent ``/exalate connect`` commands, N concurrent Approve clicks and N
concurrent ``/exalate status`` commands (answered in the ack, with 50 open requests
pending), N = 1, 10, 50, 200, in at least 10 bursts and 200 samples per N; Exalate's
create call answers after 2 s. In HTTP mode an ack is timed by the client, from sending
the signed request to having the whole answer; in Socket Mode by a fake Slack in the
benchmark's own process, which does nothing else, from sending the envelope to
receiving the ack. Prints p50/p95/p99/max ack time in ms for the bot and for a bare
Bolt ``AsyncApp`` that only acks, the ratio of their p99s, and how many of the bot's
acks came after Slack's 3 s (``late``; an HTTP request Bolt answered 404 for want of
an ack counts as infinitely late). Then the same for a bare app that answers as its
listener returns (``inline``: ``process_before_response``, as the bot does) instead of
checking for the ack every 10 ms, as Bolt does by default: the fastest a Bolt app acks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path

import aiohttp

from bot.sandbox.slack_emulator import FakeSlack
from tests.bench.common import (
    Servers,
    approve_body,
    approve_payload,
    bare_bolt_command,
    bot_command,
    bot_environment,
    burst,
    card_values,
    command_body,
    command_fields,
    handed_out,
    percentiles,
    serve,
    servers,
    socket_burst,
    sqlite_url,
    submission_body,
)

SIZES = (1, 10, 50, 200)
SAMPLES = 200
BURSTS = 10
"""At least SAMPLES acks and BURSTS bursts per size: a p99 over a few bursts is the
slowest burst's, and one hiccup of a shared 2-core machine would decide it."""
PENDING_FOR_STATUS = 50
KINDS = ("command", "approve", "status")

Send = Callable[[str, list[str]], Awaitable[list[float]]]
"""Sends one burst: a kind and, per message, its argument (command text or button value)."""
Results = dict[str, dict[int, list[float]]]
"""Ack times in seconds, by kind and burst size."""


def rounds(size: int) -> int:
    return max(BURSTS, SAMPLES // size)


def over_http(url: str, control: str) -> Send:
    async def send(kind: str, arguments: list[str]) -> list[float]:
        given = await handed_out(control, len(arguments))
        if kind == "approve":
            clicks = [approve_body(v, g) for v, g in zip(arguments, given, strict=True)]
            return await burst(url, clicks, refused_is_late=True)
        commands = [command_body(text, g) for text, g in zip(arguments, given, strict=True)]
        return await burst(url, commands, refused_is_late=True)

    return send


def over_socket(socket_side: FakeSlack, control: str) -> Send:
    async def send(kind: str, arguments: list[str]) -> list[float]:
        given = await handed_out(control, len(arguments))
        if kind == "approve":
            payloads = [approve_payload(v, g) for v, g in zip(arguments, given, strict=True)]
            return await socket_burst(socket_side, "interactive", payloads)
        commands = [command_fields(text, g) for text, g in zip(arguments, given, strict=True)]
        return await socket_burst(socket_side, "slash_commands", commands)

    return send


async def measure(
    send: Send, kinds: Mapping[str, Iterator[str]]
) -> dict[str, dict[int, list[float]]]:
    """Ack times per kind and burst size; ``kinds`` gives each kind's arguments."""
    results: dict[str, dict[int, list[float]]] = {}
    for kind, arguments in kinds.items():
        await send(kind, [next(arguments) for _ in range(20)])  # warm up
        results[kind] = {}
        for size in SIZES:
            samples: list[float] = []
            for _ in range(rounds(size)):
                samples += await send(kind, [next(arguments) for _ in range(size)])
            results[kind][size] = samples
    return results


async def prepare(url: str, database: str, count: int) -> None:
    """Submit valid requests, a few at a time, until ``count`` are stored (a burst on a
    slow machine may be answered "Jira did not answer in time": those are sent again)."""
    names = itertools.count()
    while (stored := len(await card_values(database))) < count:
        batch = min(25, count - stored)
        await burst(url, [submission_body(f"p{next(names)}") for _ in range(batch)])


async def submitted(at: Servers, database: str, count: int) -> None:
    """``count`` requests stored in ``database`` through a bot in HTTP mode."""
    environment = bot_environment(at.slack, at.jira, database)
    async with serve(bot_command(), environment) as (url, _process):
        await prepare(url, database, count)


async def measured(
    who: str,
    at: Servers,
    database: str,
    kinds: Mapping[str, Iterator[str]],
    *,
    socket_side: FakeSlack | None,
) -> Results:
    """Start the bot or a bare app (``who``: ``bare`` or ``inline``) on ``database`` and
    measure ``kinds`` against it, over HTTP or, given ``socket_side``, in Socket Mode.
    There the port it is given only tells that it is up: the bot's probes, the bare
    app's empty server."""
    socket_mode = socket_side is not None
    if who == "bot":
        command = bot_command(socket_mode=socket_mode)
    else:
        command = bare_bolt_command(socket_mode=socket_mode, inline=who == "inline")
    up_on = "--health-port" if socket_mode and who == "bot" else "--port"
    environment = bot_environment(at.slack, at.jira, database)
    async with serve(command, environment, port_option=up_on) as (url, _process):
        if socket_side is not None:
            await socket_side.wait_connected(timeout=30)
            return await measure(over_socket(socket_side, at.control), kinds)
        return await measure(over_http(url, at.control), kinds)


async def run(
    transport: str, kinds: Sequence[str], at: Servers, socket_side: FakeSlack, folder: Path
) -> dict[str, Results]:
    """The bot and both bare apps, each of ``kinds``, over ``transport``."""
    over = socket_side if transport == "socket" else None
    needed = sum(rounds(size) * size for size in SIZES) + 20
    results: dict[str, Results] = {}
    for who in ("bot", "bare", "inline"):
        results[who] = {}
        database = sqlite_url(folder / f"{transport}-{who}.db")
        if "approve" in kinds or "command" in kinds:
            approvals: Iterator[str] = itertools.repeat("1:0000000000000000")
            if who == "bot" and "approve" in kinds:
                await submitted(at, database, needed)
                values = await card_values(database)
                approvals = (values[n] for n in sorted(values))
            arguments = {"command": itertools.repeat("connect"), "approve": approvals}
            chosen = {kind: arguments[kind] for kind in kinds if kind in arguments}
            results[who] |= await measured(who, at, database, chosen, socket_side=over)
        if "status" in kinds:
            status_database = sqlite_url(folder / f"{transport}-{who}-status.db")
            if who == "bot":
                await submitted(at, status_database, PENDING_FOR_STATUS)
            statuses = {"status": itertools.repeat("status")}
            results[who] |= await measured(who, at, status_database, statuses, socket_side=over)
    return results


def report(transport: str, kinds: Sequence[str], results: dict[str, Results]) -> None:
    print(f"\n{transport}")
    print(
        f"{'kind':8} {'N':>4} {'samples':>7} | {'bot p50':>8} {'p95':>7} {'p99':>7} {'max':>7}"
        f" | {'bare p50':>8} {'p95':>7} {'p99':>7} | {'p99 ratio':>9} {'late':>5}"
        f" | {'inline p50':>10} {'p99':>7} | {'ratio':>6}"
    )
    for kind in kinds:
        for size in SIZES:
            bot = results["bot"][kind][size]
            ours = percentiles(bot)
            bare = percentiles(results["bare"][kind][size])
            inline = percentiles(results["inline"][kind][size])
            print(
                f"{kind:8} {size:>4} {len(bot):>7} | {ours['p50']:>8.1f} "
                f"{ours['p95']:>7.1f} {ours['p99']:>7.1f} {ours['max']:>7.1f} | "
                f"{bare['p50']:>8.1f} {bare['p95']:>7.1f} {bare['p99']:>7.1f} | "
                f"{ours['p99'] / bare['p99']:>9.2f} {sum(t > 3.0 for t in bot):>5} | "
                f"{inline['p50']:>10.1f} {inline['p99']:>7.1f} | "
                f"{ours['p99'] / inline['p99']:>6.2f}"
            )


async def main(transports: Sequence[str], kinds: Sequence[str]) -> None:
    # Slack's Socket Mode side, here: the acks are timed in a process that does no other work.
    async with FakeSlack() as socket_side:
        with servers(socket_side.socket_mode_url) as at, tempfile.TemporaryDirectory() as folder:
            async with aiohttp.ClientSession() as session:
                latency = float(os.environ.get("BENCH_CREATE_LATENCY", "2.0"))
                await session.post(at.jira + "/_simulator/latency", json={"create": latency})
            for transport in transports:
                results = await run(transport, kinds, at, socket_side, Path(folder))
                report(transport, kinds, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=("http", "socket"))
    parser.add_argument("--kind", choices=KINDS)
    chosen = parser.parse_args()
    # The timing side must not pause: a full collection of this process's heap (every
    # ack and call the fake Slack recorded) would add its 50-100 ms to whichever acks
    # were in flight. Nothing here makes much garbage in cycles.
    gc.disable()
    transports = [chosen.transport] if chosen.transport else ["http", "socket"]
    asyncio.run(main(transports, [chosen.kind] if chosen.kind else KINDS))
