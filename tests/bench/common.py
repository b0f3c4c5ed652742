"""Shared pieces of the benchmarks: processes, signed requests, percentiles.

The bot runs as ``exalate-bot run --http`` in its own process; the fake Slack and the
simulator run in another (``tests.bench.servers``); the load comes from the benchmark's
own process. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.approvals.model import RequestFields, fingerprint
from bot.sandbox.slack_emulator import FakeSlack
from tests.e2e.harness import signed_headers
from tests.processes import free_port

SECRET = "bench-signing-secret"
APPROVAL_CHANNEL = "C0BENCH"
REQUESTER, APPROVER = "U0ALICE", "U0BOB"


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and max, in milliseconds."""
    ordered = sorted(samples)
    cuts = (
        statistics.quantiles(ordered, n=100, method="inclusive")
        if len(ordered) > 1
        else ordered * 99
    )
    return {
        "p50": cuts[49] * 1000,
        "p95": cuts[94] * 1000,
        "p99": cuts[98] * 1000,
        "max": ordered[-1] * 1000,
    }


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# EXALATE_SECRET_KEY where the database has no file beside it for a key file (PostgreSQL).
SECRET_KEY = "bTtHq5bJ3B2XbJ5m1oQ8m7cV0mC0o1h3YQ0bH5m7c2E="


def sqlite_url(database: Path) -> str:
    return f"sqlite+aiosqlite:///{database}"


def bot_environment(slack: str, jira: str, database_url: str) -> dict[str, str]:
    """The bot's settings for a benchmark: every URL on loopback, logs at WARNING."""
    key = {} if database_url.startswith("sqlite") else {"EXALATE_SECRET_KEY": SECRET_KEY}
    return (
        os.environ
        | key
        | {
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_APP_TOKEN": "xapp-bench",
            "SLACK_API_URL": slack + "/api/",
            "JIRA_URL": jira,
            "JIRA_TOKEN": "bench-token",
            "DATABASE_URL": database_url,
            "EXALATE_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
            "EXALATE_APPROVERS": APPROVER,
            "EXALATE_LOCAL_SHORT_NAME": "acme",
            "EXALATE_CREATE_TIMEOUT": "60",
            # One simulated requester submits them all: the per-person limits are not measured.
            "EXALATE_MAX_OPEN_PER_REQUESTER": "100000",
            "EXALATE_MAX_SUBMISSIONS_PER_HOUR": "100000",
            "LOG_LEVEL": "WARNING",
        }
    )


ROUTES = 10
"""Routes in the benchmark's ``exalate-bot.toml`` (``with_routes``): the last decides."""


def with_routes(environment: dict[str, str], folder: Path) -> dict[str, str]:
    """``environment`` with its site described in an ``exalate-bot.toml`` of ``ROUTES``
    routes instead of the flat variables: nine for other projects, each naming a user
    group, and the last, for SUP, naming a group before the approver. Every request is
    routed, stored with its rule, and checked against it at each click."""
    lines = [
        "[sites.default]",
        f'jira_url = "{environment["JIRA_URL"]}"',
        'token_env = "JIRA_TOKEN"',
        'local_short_name = "acme"',
    ]
    for number in range(1, ROUTES):
        lines += [
            "[[routes]]",
            f'projects = ["P{number}", "P{number}-*"]',
            f'approvers = ["S0BENCH{number}", "{APPROVER}"]',
            f'channel = "{APPROVAL_CHANNEL}"',
        ]
    lines += [
        "[[routes]]",
        'projects = ["SUP"]',
        f'approvers = ["S0BENCHLEADS", "{APPROVER}"]',
        f'channel = "{APPROVAL_CHANNEL}"',
        'escalate_after = "4h"',
        'escalate_to = ["S0BENCHADMINS"]',
    ]
    path = folder / "exalate-bot.toml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    flat = ("JIRA_URL", "EXALATE_LOCAL_SHORT_NAME")
    return {k: v for k, v in environment.items() if k not in flat} | {"EXALATE_CONFIG": str(path)}


async def _wait_for_port(port: int, process: asyncio.subprocess.Process) -> None:
    """Until ``process`` listens on ``port``. The event loop goes on meanwhile: a bot in
    Socket Mode connects to the benchmark's own fake Slack before it opens its port."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)  # a process that starts tells nothing but its port
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"nothing listens on {port}")


@dataclass(frozen=True)
class Servers:
    """Where the fake Slack's Web API, the simulator and the fake Slack's control port
    (``tests.bench.servers``) listen."""

    slack: str
    jira: str
    control: str


@contextmanager
def servers(socket_mode_elsewhere: str | None = None) -> Iterator[Servers]:
    """The fake Slack and the simulator, in a process of their own; Socket Mode clients
    are sent to ``socket_mode_elsewhere`` when given."""
    ports = [free_port() for _ in range(3)]
    socket_mode = [socket_mode_elsewhere] if socket_mode_elsewhere else []
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.servers", *map(str, ports), *socket_mode],
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        yield Servers(*(f"http://127.0.0.1:{port}" for port in ports))
    finally:
        process.terminate()
        process.wait()


@asynccontextmanager
async def serve(
    command: list[str], environment: dict[str, str], *, port_option: str = "--port"
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """Start a server process on a free port (given as ``port_option``); yields its
    Slack endpoint's URL and the process."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *command, port_option, str(port), env=environment
    )
    try:
        await _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/slack/events", process
    finally:
        process.send_signal(signal.SIGINT)  # lets py-spy write its profile, and the bot close
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


_profiles = itertools.count(1)


def bot_command(*, socket_mode: bool = False) -> list[str]:
    """The bot in HTTP mode (or Socket Mode, with its probes on the port given); with
    BENCH_PROFILE=FILE each bot started runs under py-spy, which writes FILE.1, FILE.2, …
    in the order they were started."""
    mode = [] if socket_mode else ["--http"]
    command = [sys.executable, "-m", "bot", "run", *mode, "--host", "127.0.0.1"]
    if profile := os.environ.get("BENCH_PROFILE"):
        output = f"{profile}.{next(_profiles)}"
        return ["py-spy", "record", "--format", "raw", "-o", output, "--", *command]
    return command


def bare_bolt_command(*, socket_mode: bool = False, inline: bool = False) -> list[str]:
    options = [*(["--socket"] if socket_mode else []), *(["--inline"] if inline else [])]
    return [sys.executable, "-m", "tests.bench.bare_bolt", *options]


@dataclass(frozen=True)
class HandedOut:
    """What Slack puts in each command and click: a trigger_id and a response_url. The
    fake Slack honours only those it issued (``handed_out``)."""

    trigger_id: str
    response_url: str


UNUSED = HandedOut("unused-trigger", "http://127.0.0.1:9/unused")
"""For payloads whose trigger_id and response_url the bot does not use on the measured
path (form submissions while preparing)."""


async def handed_out(control: str, count: int) -> list[HandedOut]:
    """``count`` fresh trigger_ids and response URLs, issued by the fake Slack."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(control + "/handed-out", params={"count": str(count)}) as answer,
    ):
        answer.raise_for_status()
        return [HandedOut(*pair) for pair in (await answer.json())["handed_out"]]


def command_fields(text: str, given: HandedOut, user: str = REQUESTER) -> dict[str, str]:
    """A slash command's fields, as Slack posts them (or puts them in an envelope)."""
    return {
        "token": "legacy",
        "team_id": "T1",
        "channel_id": "C0GENERAL",
        "user_id": user,
        "command": "/exalate",
        "text": text,
        "api_app_id": "A1",
        "response_url": given.response_url,
        "trigger_id": given.trigger_id,
    }


def command_body(text: str, given: HandedOut, user: str = REQUESTER) -> tuple[bytes, str]:
    fields = command_fields(text, given, user)
    return urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"


def payload_body(payload: dict[str, Any]) -> tuple[bytes, str]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return body, "application/x-www-form-urlencoded"


_VIEWS = itertools.count(1)


def submission_body(remote: str, user: str = REQUESTER) -> tuple[bytes, str]:
    def text(value: str) -> dict[str, Any]:
        return {"input": {"type": "plain_text_input", "value": value}}

    option = {"value": "SUP", "text": {"type": "plain_text", "text": "SUP"}}
    values = {
        "local_short_name": text("acme"),
        "remote_short_name": text(remote),
        "connection_name": text(""),
        "description": text("benchmark"),
        "project_key": {"exalate_project": {"type": "static_select", "selected_option": option}},
    }
    return payload_body(
        {
            "type": "view_submission",
            "api_app_id": "A1",
            "token": "legacy",
            "team": {"id": "T1"},
            "user": {"id": user, "team_id": "T1"},
            "trigger_id": UNUSED.trigger_id,
            "view": {
                "id": f"V{next(_VIEWS)}",  # each submission from a view of its own
                "type": "modal",
                "callback_id": "exalate_request",
                "hash": "h",
                "private_metadata": "",
                "state": {"values": values},
            },
        }
    )


async def read(database_url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of ``query`` from the bot's database (it belongs to the bot's process: one
    connection, closed again)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.exec_driver_sql(query)]
    finally:
        await engine.dispose()


async def card_values(database_url: str) -> dict[int, str]:
    """What each request's Approve button carries (``id:fingerprint``), read from the
    bot's database as its cards show it."""
    rows = await read(
        database_url,
        "SELECT id, version, local_short_name, remote_short_name, connection_name, "
        "description, project_key FROM connection_request",
    )
    return {
        row[0]: f"{row[0]}:{fingerprint(row[0], row[1], RequestFields(*row[2:]))}" for row in rows
    }


def approve_body(value: str, given: HandedOut, user: str = APPROVER) -> tuple[bytes, str]:
    return payload_body(approve_payload(value, given, user))


def approve_payload(value: str, given: HandedOut, user: str = APPROVER) -> dict[str, Any]:
    """An Approve click's payload."""
    return {
        "type": "block_actions",
        "api_app_id": "A1",
        "token": "legacy",
        "team": {"id": "T1"},
        "user": {"id": user, "team_id": "T1"},
        "container": {"type": "message", "message_ts": "1", "channel_id": APPROVAL_CHANNEL},
        "channel": {"id": APPROVAL_CHANNEL},
        "message": {"ts": "1"},
        "trigger_id": given.trigger_id,
        "response_url": given.response_url,
        "actions": [
            {
                "type": "button",
                "action_id": "exalate_approve",
                "block_id": "b",
                "value": value,
                "action_ts": "1",
            }
        ],
    }


async def timed_post(
    session: aiohttp.ClientSession,
    url: str,
    body: tuple[bytes, str],
    *,
    refused_is_late: bool = False,
) -> float:
    """Seconds from sending a freshly signed request to having the whole answer. An
    answer other than 200 raises, or with ``refused_is_late`` counts as infinitely late
    (Bolt answers 404 when no ack came within 3 s)."""
    data, content_type = body
    headers = signed_headers(data, secret=SECRET, content_type=content_type)
    started = time.perf_counter()
    async with session.post(url, data=data, headers=headers) as response:
        await response.read()
        if response.status == 200:
            return time.perf_counter() - started
        if refused_is_late:
            return math.inf
        raise RuntimeError(f"HTTP {response.status}")


async def socket_burst(
    socket_side: FakeSlack, envelope_type: str, payloads: Sequence[dict[str, Any]]
) -> list[float]:
    """Send all ``payloads`` at once over Socket Mode; the ack time of each (infinite
    when none came within 10 s: Bolt gave up after its 3 s)."""

    async def timed(payload: dict[str, Any]) -> float:
        try:
            _ack, seconds = await socket_side.push_timed(envelope_type, payload, timeout=10)
        except AssertionError:
            return math.inf
        return seconds

    return list(await asyncio.gather(*(timed(payload) for payload in payloads)))


async def burst(
    url: str, bodies: Sequence[tuple[bytes, str]], *, refused_is_late: bool = False
) -> list[float]:
    """Send all ``bodies`` at once; the ack time of each. With ``refused_is_late`` a
    request Bolt gave up on counts as infinitely late instead of stopping the benchmark."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sent = (timed_post(session, url, b, refused_is_late=refused_is_late) for b in bodies)
        return list(await asyncio.gather(*sent))


async def answers(sent: Sequence[tuple[str, tuple[bytes, str]]]) -> list[tuple[int, str]]:
    """Send every ``(url, body)`` at once, freshly signed; each answer's HTTP status and
    text, in order. For a benchmark that must tell a form accepted from a form answered
    with errors, which ``burst`` (it only times the ack) cannot."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def answer(url: str, body: tuple[bytes, str]) -> tuple[int, str]:
            data, content_type = body
            headers = signed_headers(data, secret=SECRET, content_type=content_type)
            async with session.post(url, data=data, headers=headers) as response:
                return response.status, await response.text()

        return list(await asyncio.gather(*(answer(url, body) for url, body in sent)))
