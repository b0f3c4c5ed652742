"""Ack latency under concurrent load, the bot against bare Bolt apps, in both transports.

    python -m tests.bench.bench_ack [--transport http|socket] [--kind command|approve|status]
                                    [--sizes 10,50] [--rounds K] [--routes]

(both transports, every kind and every size by default)

N concurrent ``/exalate connect`` commands, N concurrent Approve clicks and N
concurrent ``/exalate status`` commands (answered in the ack, with 50 open requests
pending), N = 1, 10, 50, 200, in at least 10 bursts and 200 samples per N. In HTTP mode
an ack is timed by the client, from sending the signed request to having the whole
answer; in Socket Mode by a fake Slack in the benchmark's own process, which does
nothing else, from sending the envelope to receiving the ack. Prints p50/p95/p99/max ack
time in ms for the bot and for a bare Bolt ``AsyncApp`` that only acks, the ratio of
their p99s, and how many of the bot's acks came after Slack's 3 s (``late``; an HTTP
request Bolt answered 404 for want of an ack counts as infinitely late). Then the same
for a bare app that answers as its listener returns (``inline``:
``process_before_response``, as the bot does) instead of checking for the ack every
10 ms, as Bolt does by default: the fastest a Bolt app acks. Last, ``burst``: how long
the median burst took to be acked whole (its slowest ack), the bot's over the bare app's.
A p99 is about the slowest burst's, whichever met a slow spell; this says what a burst
usually costs.

All the apps run at once and take turns, one burst each, in an order that rotates: this
machine has slow spells of a second or so, in which every process, the load generator
too, does the same work two to three times slower, and a p99 over ten bursts is the
slowest burst's. Taking turns lets a spell fall on every app alike. ``twin`` is the
default bare app a second time: its p99 over the first one's (``twin ratio``) is what
the machine's noise alone does to a p99 ratio in that run. After each of its bursts the
bot is let finish what it acked (Exalate answers a create call after 0.2 s; the bot's
``/metrics`` shows no listener running) before anyone's next burst, so its approvals'
work neither runs beside a bare app's burst nor piles up: every burst meets a quiet
machine, and the work after the ack still runs beside the later acks of its own burst.

``--routes`` describes the bot's site in an ``exalate-bot.toml`` with ten routes of
approvals (``tests.bench.common.with_routes``): every request is routed, and every
click checked against its route.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import statistics
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.runtime.app import SLACK_EVENTS_PATH
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
    with_routes,
)

SIZES = (1, 10, 50, 200)
SAMPLES = 200
BURSTS = 10
"""At least SAMPLES acks and BURSTS bursts per size and app."""
PENDING_FOR_STATUS = 50
KINDS = ("command", "approve", "status")
APPS = ("bot", "bare", "twin", "inline")
WARM_UP = 20
CREATE_LATENCY = 0.2
"""Seconds Exalate takes to answer a create call (BENCH_CREATE_LATENCY overrides it):
the bot settles after each of its bursts, approvals included, before the next burst."""

Send = Callable[[str, list[str]], Awaitable[list[float]]]
"""Sends one burst: a kind and, per message, its argument (command text or button value)."""
Bursts = list[list[float]]
"""Ack times in seconds, burst by burst."""
Results = dict[str, dict[str, dict[int, Bursts]]]
"""Ack times by app, kind and burst size."""


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
            times = await socket_burst(socket_side, "interactive", payloads)
        else:
            commands = [command_fields(t, g) for t, g in zip(arguments, given, strict=True)]
            times = await socket_burst(socket_side, "slash_commands", commands)
        # The fake Slack keeps every ack it parsed, for tests to read. Kept here, the
        # bot's status acks (some 10 kB each; a bare app's, a few bytes) grew this process
        # by fresh memory every burst, and the page faults (some 400 a burst of 50) were
        # timed as the bot's. Dropped after each burst, the memory is used again.
        socket_side.acks.clear()
        return times

    return send


@dataclass(frozen=True)
class Plan:
    """Which burst sizes, and how many times the usual number of bursts of each."""

    sizes: Sequence[int]
    scale: int

    def rounds(self, size: int) -> int:
        return self.scale * max(BURSTS, SAMPLES // size)

    @property
    def clicks(self) -> int:
        """Approve clicks a run sends the bot, each on a request of its own."""
        return WARM_UP + sum(self.rounds(size) * size for size in self.sizes)


async def measure(
    kind: str, sends: Mapping[str, Send], arguments: Mapping[str, Iterator[str]], plan: Plan
) -> dict[str, dict[int, Bursts]]:
    """Ack times of ``kind`` per app and burst size. In each round every app gets one
    burst, and who goes first rotates; ``arguments`` gives each app's."""
    apps = list(sends)
    results: dict[str, dict[int, Bursts]] = {who: {} for who in apps}
    for who in apps:
        await sends[who](kind, list(itertools.islice(arguments[who], WARM_UP)))
    for size in plan.sizes:
        for who in apps:
            results[who][size] = []
        for turn in range(plan.rounds(size)):
            for who in apps[turn % len(apps) :] + apps[: turn % len(apps)]:
                sample = list(itertools.islice(arguments[who], size))
                results[who][size].append(await sends[who](kind, sample))
    return results


async def prepare(url: str, database: str, count: int) -> None:
    """Submit valid requests, a few at a time, until ``count`` are stored (a burst on a
    slow machine may be answered "Jira did not answer in time": those are sent again)."""
    names = itertools.count()
    while (stored := len(await card_values(database))) < count:
        batch = min(25, count - stored)
        await burst(url, [submission_body(f"p{next(names)}") for _ in range(batch)])


async def submitted(sides: Sides, database: str, count: int) -> None:
    """``count`` requests stored in ``database`` through a bot in HTTP mode."""
    environment = sides.environment(sides.at.slack, database)
    async with serve(bot_command(), environment) as (url, _process):
        await prepare(url, database, count)


TEXTS = {"command": "connect", "status": "status", "approve": "1:0000000000000000"}
"""What each kind sends a bare app (which acks whatever it is sent)."""


async def bot_arguments(kind: str, sides: Sides, database: str, plan: Plan) -> Iterator[str]:
    """What the bot is sent, with its database prepared: an Approve click for each of
    as many fresh requests as the run needs, or 50 open requests for ``status`` to list."""
    if kind == "approve":
        await submitted(sides, database, plan.clicks)
        values = await card_values(database)
        return (values[n] for n in sorted(values))
    if kind == "status":
        await submitted(sides, database, PENDING_FOR_STATUS)
    return itertools.repeat(TEXTS[kind])


@dataclass(frozen=True)
class Sides:
    """Where the apps are served from: the fake Slack and simulator the bot uses (its
    Socket Mode side in ``socket_sides["bot"]``), and a fake Slack of its own for each
    bare app in Socket Mode, whose Web API hands out its own WebSocket."""

    at: Servers
    socket_sides: Mapping[str, FakeSlack]
    routes_in: Path | None = None
    """Where the bot's ``exalate-bot.toml`` with routes goes; None: flat variables."""

    def environment(self, slack: str, database: str, *, bot: bool = True) -> dict[str, str]:
        """An app's settings; the bot's site and routes from a file with ``--routes``."""
        environment = bot_environment(slack, self.at.jira, database)
        if bot and self.routes_in is not None:
            return with_routes(environment, self.routes_in)
        return environment


async def started(
    who: str, transport: str, database: str, sides: Sides, stack: AsyncExitStack
) -> Send:
    """Start ``who`` (the bot, or a bare app: ``bare``, ``twin`` or ``inline``) until
    ``stack`` closes; how to send it a burst. In Socket Mode the port it is given only
    tells that it is up: the bot's probes, the bare app's empty server."""
    socket_side = sides.socket_sides[who] if transport == "socket" else None
    if who == "bot":
        command = bot_command(socket_mode=socket_side is not None)
        slack = sides.at.slack
    else:
        command = bare_bolt_command(socket_mode=socket_side is not None, inline=who == "inline")
        slack = socket_side.base_url if socket_side is not None else sides.at.slack
    up_on = "--health-port" if socket_side is not None and who == "bot" else "--port"
    environment = sides.environment(slack, database, bot=who == "bot")
    url, _process = await stack.enter_async_context(serve(command, environment, port_option=up_on))
    if socket_side is None:
        send = over_http(url, sides.at.control)
    else:
        await socket_side.wait_connected(timeout=30)
        send = over_socket(socket_side, sides.at.control)
    return send if who != "bot" else settling(send, url.replace(SLACK_EVENTS_PATH, "/metrics"))


def settling(send: Send, metrics: str) -> Send:
    """``send``, then wait until the bot has finished all it acked: the next burst, the
    bot's or a bare app's, meets a machine that is not still working on this one."""

    async def send_and_settle(kind: str, arguments: list[str]) -> list[float]:
        times = await send(kind, arguments)
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(metrics) as answer:
                    if "exalate_bot_listeners_running 0.0" in await answer.text():
                        return times
                await asyncio.sleep(0.02)  # polled from outside, as a scrape would

    return send_and_settle


async def run(
    transport: str, kinds: Sequence[str], sides: Sides, folder: Path, plan: Plan
) -> Results:
    """Every app, each of ``kinds``, over ``transport``: per kind the bot on a database
    of its own, prepared for it, and the bare apps beside it."""
    results: Results = {who: {} for who in APPS}
    for kind in kinds:
        database = sqlite_url(folder / f"{transport}-{kind}.db")
        arguments: dict[str, Iterator[str]] = {who: itertools.repeat(TEXTS[kind]) for who in APPS}
        arguments["bot"] = await bot_arguments(kind, sides, database, plan)
        async with AsyncExitStack() as stack:
            sends = {who: await started(who, transport, database, sides, stack) for who in APPS}
            for who, times in (await measure(kind, sends, arguments, plan)).items():
                results[who][kind] = times
    return results


def typical_burst(bursts: Bursts) -> float:
    """In ms, the median over bursts of each one's slowest ack."""
    return statistics.median(max(times) for times in bursts) * 1000


def report(transport: str, kinds: Sequence[str], sizes: Sequence[int], results: Results) -> None:
    print(f"\n{transport}")
    print(
        f"{'kind':8} {'N':>4} {'samples':>7} | {'bot p50':>8} {'p95':>7} {'p99':>7} {'max':>7}"
        f" | {'bare p50':>8} {'p95':>7} {'p99':>7} | {'p99 ratio':>9} {'late':>5}"
        f" | {'twin p99':>8} {'ratio':>6} | {'inline p50':>10} {'p99':>7} | {'ratio':>6}"
        f" | {'burst':>6} {'bare':>6} {'ratio':>6}"
    )
    for kind in kinds:
        for size in sizes:
            bursts = {who: results[who][kind][size] for who in APPS}
            acks = {who: [t for times in bursts[who] for t in times] for who in APPS}
            bot = acks["bot"]
            ours, bare, twin, inline = (percentiles(acks[who]) for who in APPS)
            burst, bare_burst = typical_burst(bursts["bot"]), typical_burst(bursts["bare"])
            print(
                f"{kind:8} {size:>4} {len(bot):>7} | {ours['p50']:>8.1f} "
                f"{ours['p95']:>7.1f} {ours['p99']:>7.1f} {ours['max']:>7.1f} | "
                f"{bare['p50']:>8.1f} {bare['p95']:>7.1f} {bare['p99']:>7.1f} | "
                f"{ours['p99'] / bare['p99']:>9.2f} {sum(t > 3.0 for t in bot):>5} | "
                f"{twin['p99']:>8.1f} {twin['p99'] / bare['p99']:>6.2f} | "
                f"{inline['p50']:>10.1f} {inline['p99']:>7.1f} | "
                f"{ours['p99'] / inline['p99']:>6.2f} | "
                f"{burst:>6.1f} {bare_burst:>6.1f} {burst / bare_burst:>6.2f}"
            )


async def main(
    transports: Sequence[str], kinds: Sequence[str], plan: Plan, *, routes: bool = False
) -> None:
    # Slack's Socket Mode side, here: the acks are timed in a process that does no
    # other work. The bot's Web API calls go to the servers' process.
    async with AsyncExitStack() as stack:
        socket_sides = {who: await stack.enter_async_context(FakeSlack()) for who in APPS}
        at = stack.enter_context(servers(socket_sides["bot"].socket_mode_url))
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        async with aiohttp.ClientSession() as session:
            latency = float(os.environ.get("BENCH_CREATE_LATENCY", str(CREATE_LATENCY)))
            await session.post(at.jira + "/_simulator/latency", json={"create": latency})
        for transport in transports:
            sides = Sides(at, socket_sides, Path(folder) if routes else None)
            results = await run(transport, kinds, sides, Path(folder), plan)
            report(transport, kinds, plan.sizes, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=("http", "socket"))
    parser.add_argument("--kind", choices=KINDS)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="times the usual number of bursts per size. A p99 stays about the slowest "
        "burst's (1%% of the acks is one burst of 10, half of one of 50), but over more "
        "bursts each app is likelier to meet the machine's slow spells",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=list(SIZES),
        help=f"burst sizes, comma-separated (default: {','.join(map(str, SIZES))}). Fewer "
        "sizes make more bursts of the others affordable, Approve's above all: every "
        "click needs a request of its own, submitted through the bot beforehand",
    )
    parser.add_argument(
        "--routes",
        action="store_true",
        help="describe the bot's site in an exalate-bot.toml with ten routes of approvals",
    )
    chosen = parser.parse_args()
    # The timing side must not pause: a full collection of this process's heap (every
    # ack and call the fake Slack recorded) would add its 50-100 ms to whichever acks
    # were in flight. Nothing here makes much garbage in cycles.
    gc.disable()
    transports = [chosen.transport] if chosen.transport else ["http", "socket"]
    plan = Plan(chosen.sizes, chosen.rounds)
    kinds = [chosen.kind] if chosen.kind else KINDS
    asyncio.run(main(transports, kinds, plan, routes=chosen.routes))
