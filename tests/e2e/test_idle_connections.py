"""Slow and idle clients against the bot as a process (issue "Hostile and broken input,
round two"): 1,100 connections that sent their headers and part of a body, at an
open-files limit of 1,024, took every descriptor; a genuine command and the probes then
timed out, and asyncio wrote 72 MB of accept errors in 17 s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.config import Settings
from bot.runtime import http_gate
from bot.runtime.http_limits import SERVER_OPTIONS
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import FakeSlack
from tests.e2e.bot_process import BotProcess, spawned
from tests.e2e.harness import (
    APPROVAL_CHANNEL,
    BOB,
    BOT_TOKEN,
    JIRA_TOKEN,
    SIGNING_SECRET,
    SlackSide,
    http_mode,
)
from tests.processes import free_port

SLOW_CONNECTIONS = 1100
BOT_OPEN_FILES = 1024
"""systemd's default soft limit, made the hard one too: the bot cannot raise it."""
LOG_BUDGET = 100_000
"""Bytes the bot may write to its log from its start to its stop."""
SLACK_DEADLINE = 3.0
SLOW_HEAD = (
    b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 500000\r\n\r\npayload=%7B%22type%22"
)
"""Headers announcing a body near the gate's limit, and the first bytes of it."""


def _environment(slack: FakeSlack, jira_url: str, database: Path) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "JIRA_URL": jira_url,
        "JIRA_TOKEN": JIRA_TOKEN,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "EXALATE_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
        "EXALATE_APPROVERS": BOB,
        "EXALATE_LOCAL_SHORT_NAME": "acme",
        "LOG_LEVEL": "INFO",
    }


LIMITED = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({BOT_OPEN_FILES}, {BOT_OPEN_FILES})); "
    "sys.argv[0] = 'exalate-bot'; "
    "runpy.run_module('bot', run_name='__main__', alter_sys=True)"
)
"""``python -m bot`` with 1,024 descriptors, soft and hard, set before it starts."""


@contextlib.asynccontextmanager
async def limited_bot(environment: dict[str, str], health_port: int) -> AsyncIterator[BotProcess]:
    """``exalate-bot run --http`` with 1,024 open files at most, once it serves; stopped
    on exit."""
    port = free_port()
    http = ("run", "--http", "--host", "127.0.0.1", "--port", str(port))
    url = f"http://127.0.0.1:{port}/slack/events"
    arguments = ("-c", LIMITED, *http, "--health-port", str(health_port))
    async with spawned(environment, *arguments, url=url) as bot:
        await bot.says("serving_http")
        yield bot


@pytest.fixture(name="open_files")
def _open_files() -> Iterator[None]:
    """Enough descriptors in this process for the slow clients, the fakes and pytest."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = SLOW_CONNECTIONS + 500
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"this process may open {hard} files (hard limit); the test needs {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@dataclass
class SlowClient:
    """One connection that sent its headers and a little of its body, then nothing."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def dropped(self) -> None:
        """Return once the bot has closed the connection."""
        with contextlib.suppress(ConnectionError):
            await self.reader.read()


async def _slow_clients(port: int, count: int) -> list[SlowClient]:
    async def one() -> SlowClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(SLOW_HEAD)
        await writer.drain()
        return SlowClient(reader, writer)

    clients: list[SlowClient] = []
    while len(clients) < count:  # in batches, well inside the bot's accept queue
        clients += await asyncio.gather(*(one() for _ in range(min(100, count - len(clients)))))
    return clients


async def _until_dropped(clients: list[SlowClient], count: int) -> None:
    """Wait until the bot has closed ``count`` of ``clients``: it has then taken them all
    (the cap is full and each one more took an older one's place)."""
    waits = [asyncio.ensure_future(client.dropped()) for client in clients]
    try:
        async with asyncio.timeout(10):
            for dropped, wait in enumerate(asyncio.as_completed(waits), start=1):
                await wait
                if dropped == count:
                    return
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


@pytest.mark.usefixtures("open_files")
async def test_slow_clients_at_1024_files_leave_room_for_slack_and_the_probes(
    slack: FakeSlack, simulator: Simulator, jira_url: str, tmp_path: Path
) -> None:
    """1,100 slow connections at an open-files limit of 1,024: a signed ``/exalate
    status`` is answered within Slack's 3 s, /healthz on the probes' port answers, and
    the bot's whole log stays under 100 kB, without an error line."""
    health_port = free_port()
    environment = _environment(slack, jira_url, tmp_path / "bot.db")
    async with limited_bot(environment, health_port) as bot:
        cap = int(bot.said("serving_http")[0]["max_connections"])
        port = int(bot.url.rsplit(":", 1)[1].split("/", 1)[0])
        clients = await _slow_clients(port, SLOW_CONNECTIONS)
        try:
            await _until_dropped(clients, SLOW_CONNECTIONS - cap)
            async with aiohttp.ClientSession() as http:
                sent = time.monotonic()
                async with asyncio.timeout(10):  # a failure, not a hang, if it never comes
                    reply = await SlackSide(slack, simulator, bot.url, http).command("status")
                answered = time.monotonic() - sent
                probe = f"http://127.0.0.1:{health_port}/healthz"
                async with asyncio.timeout(SLACK_DEADLINE), http.get(probe) as health:
                    assert health.status == 200
        finally:
            for client in clients:
                client.writer.close()
    assert cap < BOT_OPEN_FILES
    assert reply.status == 200
    assert "blocks" in reply.body  # the status list, not an error
    assert answered < SLACK_DEADLINE
    assert bot.written < LOG_BUDGET, f"the bot wrote {bot.written} bytes of log"
    assert not [line for line in bot.lines if line.get("level") == "error"]
    assert len(bot.said("connections_shed")) == 1  # the cap did the work, and said so once


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """All the bot sent before it closed the connection, which it must within ``seconds``."""
    async with asyncio.timeout(seconds):
        with contextlib.suppress(ConnectionError):
            return await reader.read()
    return b""


@pytest.mark.parametrize("backend", ["sqlite"])
class TestSlowClientsInProcess:
    async def test_headers_that_do_not_arrive_in_time_close_the_connection(
        self, monkeypatch: pytest.MonkeyPatch, settings: Settings
    ) -> None:
        """A client sending its headers a line at a time, or nothing, is closed after
        ``HEADER_SECONDS`` (shortened here), answered or not."""
        monkeypatch.setitem(SERVER_OPTIONS, "keepalive_timeout", 0.2)
        async with http_mode(settings) as port:
            silent = await asyncio.open_connection("127.0.0.1", port)
            slow = await asyncio.open_connection("127.0.0.1", port)
            slow[1].write(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n")
            for reader, writer in (slow, silent):
                assert await _closed_within(reader, 5) == b""
                writer.close()

    async def test_a_body_that_does_not_arrive_in_time_is_cut_off(
        self,
        monkeypatch: pytest.MonkeyPatch,
        settings: Settings,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Headers at once, then part of the body: 408 after ``BODY_SECONDS`` (shortened
        here), the connection closed, one line for any number of them."""
        caplog.set_level(logging.INFO)
        monkeypatch.setattr(http_gate, "BODY_SECONDS", 0.2)
        async with http_mode(settings) as port:
            clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
            for _, writer in clients:
                writer.write(SLOW_HEAD)
            for reader, writer in clients:
                assert (await _closed_within(reader, 5)).startswith(b"HTTP/1.1 408")
                writer.close()
        lost = [r.getMessage() for r in caplog.records if "body_lost" in r.getMessage()]
        assert lost == ["slack_request_body_lost count=1 reason=too_slow"]

    async def test_at_the_cap_a_new_connection_takes_the_oldest_idle_ones_place(
        self, settings: Settings, slack: FakeSlack, simulator: Simulator
    ) -> None:
        """Three connections at most: three that sent nothing, then a genuine command.
        The command is answered; the oldest silent connection made room for it."""
        async with http_mode(settings, max_connections=3) as port, aiohttp.ClientSession() as http:
            silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            url = f"http://127.0.0.1:{port}/slack/events"
            reply = await SlackSide(slack, simulator, url, http).command("status")
            assert reply.status == 200
            assert await _closed_within(silent[0][0], 5) == b""
            for _, writer in silent:
                writer.close()
