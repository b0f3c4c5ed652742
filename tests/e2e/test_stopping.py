"""SIGTERM ends the bot within ``STOP_WITHIN`` seconds whatever Slack and Jira do, from
the first moment of the process: the bot runs as a process of its own (``python -m bot
run``), as Docker or systemd run it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from bot.runtime.app import STOP_WITHIN
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import FakeSlack
from tests.e2e.bot_process import BotProcess, spawned
from tests.e2e.harness import APPROVAL_CHANNEL, BOB, BOT_TOKEN, JIRA_TOKEN

MARGIN = 2.0
"""Seconds on top of STOP_WITHIN for the interpreter to start and exit on this machine."""


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A loopback server that takes connections and never answers: Slack or Jira gone
    quiet. Its URL."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def _environment(tmp_path: Path, slack_api: str, jira: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": "xapp-stopping-test",
        "SLACK_API_URL": slack_api,
        "JIRA_URL": jira,
        "JIRA_TOKEN": JIRA_TOKEN,
        "JIRA_RETRIES": "0",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "EXALATE_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
        "EXALATE_APPROVERS": BOB,
        "EXALATE_POLL_INTERVAL": "0.2",
        "LOG_LEVEL": "INFO",
    }


async def _stopped_within(bot: BotProcess) -> None:
    """SIGTERM, then the process ends by itself, saying so, within the bound."""
    bot.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(STOP_WITHIN + MARGIN):
        code = await bot.process.wait()
    await bot.says("process_ended")
    assert code == 0, bot.lines
    assert bot.said("bot_stopped"), bot.lines
    assert not bot.said("stop_forced"), bot.lines


async def test_a_stop_during_the_start_ends_it_at_once(tmp_path: Path) -> None:
    """Slack takes the connection and never answers: the Socket Mode bot is still
    connecting. SIGTERM cancels the start; the process ends, it is not left to be
    killed (as PID 1 in a container it would have ignored the signal)."""
    async with silent_server() as slack, silent_server() as jira:
        environment = _environment(tmp_path, slack + "/api/", jira)
        async with spawned(environment, "-m", "bot", "run") as bot:
            await bot.says("bot_starting")
            await _stopped_within(bot)
            assert not bot.said("socket_mode_connected")


async def test_a_stop_while_jira_does_not_answer_ends_within_the_bound(tmp_path: Path) -> None:
    """Connected, serving, and a poll waiting on a Jira that takes a minute to answer:
    the poll is cut short, and the process ends within the bound."""
    simulator = Simulator(token=JIRA_TOKEN)
    asked = asyncio.Event()

    @web.middleware
    async def noticing(request: web.Request, handler: Handler) -> web.StreamResponse:
        if simulator.read_latency:
            asked.set()  # a read that will wait a minute has come in
        return await handler(request)

    simulator.app.middlewares.append(noticing)
    async with (
        TestServer(simulator.app, host="127.0.0.1") as jira,
        FakeSlack(users=(BOB,), channels={APPROVAL_CHANNEL}) as slack,
    ):
        environment = _environment(tmp_path, slack.api_url, str(jira.make_url("")).rstrip("/"))
        async with spawned(environment, "-m", "bot", "run") as bot:
            await bot.says("socket_mode_connected")
            simulator.read_latency = 60.0
            await asyncio.wait_for(asked.wait(), timeout=10)
            await _stopped_within(bot)
            assert bot.said("shutdown_cut_short")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
