"""Bots in processes of their own: two replicas on one PostgreSQL, and a crash with
initiations in flight. The fake Slack and the simulator run in this process."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from bot.config import Settings
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import Call, FakeSlack
from handlers.ids import Action
from storage import RequestRepository, make_engine, make_sessionmaker
from tests.e2e.bot_process import bot_process
from tests.e2e.harness import (
    ADMINS_GROUP,
    ALICE,
    APPROVAL_CHANNEL,
    BOB,
    BOT_TOKEN,
    CAROL,
    JIRA_TOKEN,
    SECRET_KEY,
    SIGNING_SECRET,
    SlackSide,
)


def _environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """The e2e settings as a replica's environment: polling twice a second."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": settings.slack_api_url,
        "JIRA_URL": settings.sites[0].jira_url,
        "JIRA_TOKEN": JIRA_TOKEN,
        "JIRA_RETRIES": "0",
        "DATABASE_URL": settings.database_url,
        "EXALATE_SECRET_KEY": SECRET_KEY,
        "EXALATE_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
        "EXALATE_APPROVERS": f"{BOB},{ADMINS_GROUP}",
        "EXALATE_LOCAL_SHORT_NAME": "acme",
        "EXALATE_POLL_INTERVAL": "0.5",
        "EXALATE_MAX_OPEN_PER_REQUESTER": "100",
        "EXALATE_MAX_SUBMISSIONS_PER_HOUR": "100",
        "LOG_LEVEL": "INFO",
    } | overrides


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _dms(slack: FakeSlack, user: str, *fragments: str) -> list[Call]:
    return [
        call
        for call in slack.calls_to("chat.postMessage")
        if call.args.get("channel") == "D" + user
        and all(fragment in json.dumps(call.args) for fragment in fragments)
    ]


async def _replies_from_all_but_one(slack: FakeSlack, names: list[str]) -> None:
    """Wait until every click but one (the winner, which changes the card instead) has
    been answered privately."""
    waits = [asyncio.ensure_future(slack.wait_for(f"response_url:{name}")) for name in names]
    try:
        for answered, reply in enumerate(asyncio.as_completed(waits), start=1):
            await reply
            if answered == len(names) - 1:
                return
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def _code_delivered(side: SlackSide, simulator: Simulator, name: str, nth: int) -> str:
    """The code of the ``nth`` connection, once the requester has it in a DM."""
    await simulator.holds(nth)
    code = next(c["invitationCode"] for c in simulator.connections.values() if c["name"] == name)
    await side.dm(ALICE, code)
    return str(code)


@pytest.mark.parametrize("backend", ["postgresql"])
class TestTwoReplicas:
    async def test_clicks_on_either_replica_one_connection_one_announcement_and_takeover(
        self,
        settings: Settings,
        slack: FakeSlack,
        simulator: Simulator,
        http: aiohttp.ClientSession,
    ) -> None:
        environment = _environment(settings)
        async with bot_process(environment) as first, bot_process(environment) as second:
            one = SlackSide(slack, simulator, first.url, http)
            other = dataclasses.replace(one, url=second.url)  # same payload numbering
            assert (await one.submit_request()).body == {}
            request_id = await one.request_id()

            # 20 Approve clicks at once, spread over both replicas, by two approvers.
            clicks = await asyncio.gather(
                *(
                    (one if n % 2 else other).click(
                        Action.APPROVE, request_id, BOB if n % 3 else CAROL
                    )
                    for n in range(20)
                )
            )
            code = await _code_delivered(one, simulator, "acme_to_partner", 1)
            await _replies_from_all_but_one(slack, clicks)
            assert len(simulator.create_calls) == 1
            assert len(_dms(slack, ALICE, code)) == 1

            # One replica runs the life cycle; the partner's acceptance is told once.
            holders = [bot for bot in (first, second) if bot.said("lease_taken")]
            assert len(holders) == 1
            holder = holders[0]
            survivor = second if holder is first else first
            simulator.accept("acme_to_partner")
            await one.dm(ALICE, "Your partner accepted")
            # Slack took it; the holder records that a moment later. A replica killed in
            # that moment leaves the message to be sent again (at least once, never lost).
            await _outbox_sent(settings.database_url)

            # The holder dies; the other takes the lease over and carries on.
            holder.kill()
            await holder.process.wait()
            await survivor.says("lease_taken")
            on_survivor = dataclasses.replace(one, url=survivor.url)
            assert (await on_survivor.submit_request(remote_short_name="second")).body == {}
            second_id = await on_survivor.request_id(1)
            await on_survivor.click(Action.APPROVE, second_id, BOB)
            await _code_delivered(on_survivor, simulator, "acme_to_second", 2)
            simulator.accept("acme_to_second")
            await on_survivor.dm(ALICE, "acme_to_second")
            await slack.wait_for(
                "chat.postMessage",
                lambda c: (
                    c.args.get("channel") == "D" + ALICE
                    and "Your partner accepted" in json.dumps(c.args)
                    and "acme_to_second" in json.dumps(c.args)
                ),
            )
            # By now the survivor has polled since the takeover: nothing was told twice.
            assert len(_dms(slack, ALICE, "Your partner accepted", "acme_to_partner")) == 1
            assert len(_dms(slack, ALICE, "Your partner accepted", "acme_to_second")) == 1
            assert len(simulator.create_calls) == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
class TestCrashWithInitiationsInFlight:
    async def test_a_restart_settles_them_at_once(
        self,
        settings: Settings,
        slack: FakeSlack,
        simulator: Simulator,
        http: aiohttp.ClientSession,
    ) -> None:
        """The issue's experiment: 24 approvals in flight, the bot killed with SIGKILL
        and started again at once on the same database. Exalate has all 24; the new
        process knows the old one is gone and adopts them at its first poll, with the
        default minute between polls: nothing waits out stuck_after (195 s)."""
        environment = _environment(settings, EXALATE_POLL_INTERVAL="60")
        count = 24
        async with bot_process(environment) as crashing:
            side = SlackSide(slack, simulator, crashing.url, http)
            for n in range(count):
                assert (await side.submit_request(remote_short_name=f"p{n}")).body == {}
            ids = [await side.request_id(n) for n in range(count)]
            simulator.hold_creates()
            await asyncio.gather(*(side.click(Action.APPROVE, i, BOB) for i in ids))
            await simulator.holds(count)
            crashing.kill()
            await crashing.process.wait()
        simulator.release_creates()
        async with bot_process(environment) as restarted:
            await restarted.says("lease_taken")
            for n in range(count):
                await slack.wait_for(
                    "chat.postMessage", _adoption_told(f"acme_to_p{n}"), timeout=20
                )
        assert len(simulator.create_calls) == count


def _adoption_told(name: str) -> Callable[[Call], bool]:
    """The DM telling the requester the connection exists but its code did not reach them."""

    def told(call: Call) -> bool:
        text = json.dumps(call.args)
        return (
            call.args.get("channel") == "D" + ALICE and name in text and "did not reach me" in text
        )

    return told


async def _outbox_sent(database_url: str) -> None:
    """Wait until every message in the outbox is recorded as sent."""
    engine = make_engine(database_url)
    try:
        queue = RequestRepository(make_sessionmaker(engine)).outbox
        # Another process writes it, which no event here can tell: look again shortly.
        while await queue.waiting():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    finally:
        await engine.dispose()
