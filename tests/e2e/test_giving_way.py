"""The bot's HTTP requests made after a listener's ack keep out of the way of answers
still pending: before they start, and once their answer is in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.approvals.model import RequestFields
from bot.cache import TimedCache
from bot.config import Settings
from bot.runtime.answer_first import InFlight
from bot.runtime.app import make_slack_client
from bot.sandbox.slack_emulator import FakeSlack
from storage import RequestRepository, make_engine, make_sessionmaker, upgrade_schema
from tests.e2e.harness import APPROVAL_CHANNEL
from tests.loop_turns import no_op_ack, until


async def test_a_slack_call_after_the_ack_waits_for_pending_answers(
    settings: Settings, slack: FakeSlack
) -> None:
    """A Web API call made after the ack waits while another person's answer is
    pending, and goes out once it is."""
    inflight = InFlight()
    proceed = asyncio.Event()
    async with aiohttp.ClientSession(trace_configs=[inflight.trace_config()]) as http:
        client = make_slack_client(settings, http)

        async def listener(ack: Callable[[], Awaitable[None]]) -> None:
            await ack()
            await proceed.wait()
            await client.chat_postMessage(channel=APPROVAL_CHANNEL, text="after the ack")

        task = asyncio.create_task(inflight.track(listener)(ack=no_op_ack))
        async with inflight.answering():
            proceed.set()
            await until(lambda: inflight.waiting == 1)
            assert slack.calls_to("chat.postMessage") == []
        await task
        assert await inflight.drain(timeout=5) == 0
    assert [call.args["text"] for call in slack.calls_to("chat.postMessage")] == ["after the ack"]


async def test_work_after_an_answer_comes_back_waits_for_pending_answers() -> None:
    """A listener whose request (an Exalate create, say) comes back while someone's
    answer is pending waits before going on: approvals whose calls come back together
    do not all go on at once in front of the next ack."""
    inflight = InFlight()
    arrived, release = asyncio.Event(), asyncio.Event()
    done: list[int] = []

    async def slow(_request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(text="created")

    application = web.Application()
    application.router.add_get("/create", slow)
    async with (
        TestServer(application, host="127.0.0.1") as server,
        aiohttp.ClientSession(trace_configs=[inflight.trace_config()]) as http,
    ):

        async def listener(ack: Callable[[], Awaitable[None]]) -> None:
            await ack()
            async with http.get(server.make_url("/create")) as response:
                done.append(response.status)

        task = asyncio.create_task(inflight.track(listener)(ack=no_op_ack))
        await arrived.wait()
        async with inflight.answering():
            release.set()
            await until(lambda: inflight.waiting == 1, within=1000)
            assert done == []
        await task
        assert await inflight.drain(timeout=5) == 0
    assert done == [200]


async def test_background_requests_never_wait(settings: Settings, slack: FakeSlack) -> None:
    """Outside a listener that has acked (a background job, checks before an ack) a
    request goes out at once: an answer may be waiting for it."""
    inflight = InFlight()
    async with (
        aiohttp.ClientSession(trace_configs=[inflight.trace_config()]) as http,
        inflight.answering(),
    ):
        client = make_slack_client(settings, http)
        call = asyncio.create_task(
            client.chat_postMessage(channel=APPROVAL_CHANNEL, text="a reminder")
        )
        waiting_seen = set()
        while not call.done():
            waiting_seen.add(inflight.waiting)
            await asyncio.sleep(0)
        await call
    assert waiting_seen == {0}
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_slack_client_formats_no_debug_lines(settings: Settings) -> None:
    """slack_sdk formats a DEBUG line with the whole request, modal and all, whenever
    its logger's own level is at most DEBUG (NOTSET included), before logging decides
    anything; the bot drops those lines anyway, so its client's logger says INFO."""
    async with aiohttp.ClientSession() as http:
        client = make_slack_client(settings, http)
    assert client._logger.level > logging.DEBUG  # slack_sdk's own test, private


async def test_database_work_after_the_ack_waits_for_pending_answers(database_url: str) -> None:
    """A listener's reads and writes after its ack wait while another person's answer is
    pending, as its HTTP requests do; before the ack they go at once."""
    inflight = InFlight()
    engine = make_engine(database_url)
    await upgrade_schema(engine)
    repository = RequestRepository(make_sessionmaker(engine), pause=inflight.give_way)
    fields = RequestFields("acme", "partner", "acme_to_partner", "Support sync", "SUP")
    stored: list[int] = []
    proceed = asyncio.Event()

    async def listener(ack: Callable[[], Awaitable[None]]) -> None:
        await repository.page(limit=1)  # before the ack: at once, answers pending or not
        await ack()
        await proceed.wait()
        stored.append((await repository.add(fields, "U1", datetime.now(UTC))).id)

    try:
        await inflight.track(listener)(ack=no_op_ack)
        async with inflight.answering():  # someone else's request, after the ack
            proceed.set()
            await until(lambda: inflight.waiting == 1)
            assert stored == []
        assert await inflight.drain(timeout=5) == 0
        assert len(stored) == 1
    finally:
        await engine.dispose()


async def test_shared_work_started_after_an_ack_never_waits() -> None:
    """A load others may share (here Jira's project list, warmed up after ``connect``'s
    ack) belongs to no one listener: a form submission waiting on it before its own
    answer must not find it giving way to that answer."""
    inflight = InFlight()
    go = asyncio.Event()
    loaded: list[str] = []

    async def load() -> list[str]:
        await go.wait()
        await inflight.give_way()  # as each of its HTTP requests does
        loaded.append("projects")
        return loaded

    projects = TimedCache(load, ttl=60)

    async def listener(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()
        projects.refresh_soon()

    await inflight.track(listener)(ack=no_op_ack)
    async with inflight.answering():  # a submission that waits on the load
        go.set()
        await until(lambda: loaded == ["projects"])
        assert inflight.waiting == 0
