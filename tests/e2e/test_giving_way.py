"""The bot's Slack client keeps out of the way of answers still pending."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp

from bot.config import Settings
from bot.runtime.app import make_slack_client
from bot.sandbox.slack_emulator import FakeSlack
from handlers.inflight import InFlight
from tests.e2e.harness import APPROVAL_CHANNEL


async def _no_op_ack() -> None:
    return None


async def _until(predicate: Callable[[], bool], turns: int = 100) -> None:
    """Let the loop turn until ``predicate`` holds; fail after ``turns`` turns."""
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def test_slack_calls_after_the_ack_wait_for_pending_answers(
    settings: Settings, slack: FakeSlack
) -> None:
    """The bot's Web API client gives way: a call made after the ack waits while another
    person's answer is pending, and goes out once it is."""
    inflight = InFlight()
    proceed = asyncio.Event()
    async with aiohttp.ClientSession() as http:
        client = make_slack_client(settings, http, inflight)

        async def listener(ack: Callable[[], Awaitable[None]]) -> None:
            await ack()
            await proceed.wait()
            await client.chat_postMessage(channel=APPROVAL_CHANNEL, text="after the ack")

        task = asyncio.create_task(inflight.track(listener)(ack=_no_op_ack))
        async with inflight.answering():
            proceed.set()
            await _until(lambda: inflight.waiting == 1)
            assert slack.calls_to("chat.postMessage") == []
        await task
        assert [call.args["text"] for call in slack.calls_to("chat.postMessage")] == [
            "after the ack"
        ]


async def test_slack_client_formats_no_debug_lines(settings: Settings) -> None:
    """slack_sdk formats a DEBUG line with the whole request, modal and all, whenever
    its logger's own level is at most DEBUG (NOTSET included), before logging decides
    anything; the bot drops those lines anyway, so its client's logger says INFO."""
    async with aiohttp.ClientSession() as http:
        client = make_slack_client(settings, http, InFlight())
    assert client._logger.level > logging.DEBUG  # slack_sdk's own test, private
