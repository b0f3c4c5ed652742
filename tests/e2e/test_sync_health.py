"""Sync health end to end: the bot polls the simulator's node, opens incidents in the
alerts channel of the Slack emulator, updates them in place and resolves them.

The bot runs in this process over loopback with a clock the test moves: each ``poll``
is one tick of the life-cycle jobs half a minute after the last, then the outbox sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli.doctor import run_checks
from bot.config import Settings
from bot.exalate.models import SyncQueue
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import FakeSlack
from handlers.ids import Action
from tests.e2e.conftest import Clock
from tests.e2e.harness import (
    ADMINS_GROUP,
    ALICE,
    APPROVAL_CHANNEL,
    BOB,
    CAROL,
    JIRA_TOKEN,
    MALLORY,
    PEOPLE,
    Harness,
    serving,
    settings_from_file,
)

ALERTS = "C0EXALATEOPS"
POLL = timedelta(seconds=30)
SITES_FILE = """
[sites.eu]
jira_url = "{jira}"
token_env = "JIRA_TOKEN"
local_short_name = "acme-eu"

[alerts]
channel = "{alerts}"
queue_threshold = 100
"""


@pytest.fixture(name="slack")
async def _slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        usergroups={ADMINS_GROUP: [CAROL]}, users=PEOPLE, channels={APPROVAL_CHANNEL, ALERTS}
    ) as fake:
        yield fake


@pytest.fixture(name="health_settings")
def _health_settings(
    jira_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack: FakeSlack,
    bot_database_url: str,
) -> Settings:
    path = tmp_path / "exalate-bot.toml"
    path.write_text(SITES_FILE.format(jira=jira_url, alerts=ALERTS))
    monkeypatch.setenv("JIRA_TOKEN", JIRA_TOKEN)
    return settings_from_file(path, slack, bot_database_url, approvers=f"{BOB},{ADMINS_GROUP}")


@pytest.fixture(name="harness")
async def _harness(
    health_settings: Settings, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> AsyncIterator[Harness]:
    async with serving(health_settings, slack, simulator, clock) as harness:
        yield harness


async def poll(harness: Harness, clock: Clock, times: int = 1) -> None:
    """``times`` polls of the node, each half a minute after the last."""
    for _ in range(times):
        clock.advance(POLL)
        assert await harness.tick()


def posts(slack: FakeSlack, channel: str = ALERTS) -> list[dict[str, Any]]:
    return [
        c.args
        for c in slack.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and "thread_ts" not in c.args
    ]


def thread(slack: FakeSlack, channel: str = ALERTS) -> list[str]:
    """The replies under cards in ``channel``, as JSON text."""
    return [
        json.dumps(c.args)
        for c in slack.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and "thread_ts" in c.args
    ]


def shown(slack: FakeSlack, channel: str = ALERTS) -> list[dict[str, Any]]:
    """Each top-level message in ``channel`` as it reads now (updates applied)."""
    return [
        message
        for (where, _), message in slack.messages.items()
        if where == channel and "thread_ts" not in message
    ]


def current(slack: FakeSlack, channel: str = ALERTS) -> list[str]:
    """``shown``, as JSON text."""
    return [json.dumps(message) for message in shown(slack, channel)]


async def scrape(harness: Harness) -> str:
    async with harness.http.get(harness.url.replace("/slack/events", "/metrics")) as answer:
        return await answer.text()


def consoled(simulator: Simulator, *names: str, status: str = "ACTIVE") -> None:
    for name in names:
        simulator.create_in_console(name, status=status)


async def test_an_error_opens_one_card_within_two_polls_and_resolves_in_place(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    consoled(simulator, "acme-to-partner")
    await poll(harness, clock)
    simulator.set_status("acme-to-partner", "ERROR")
    await poll(harness, clock, 2)
    assert len(posts(slack)) == 1
    (card,) = current(slack)
    assert "acme-to-partner" in card
    assert "Error" in card or "ERROR" in card
    await poll(harness, clock, 100)
    assert len(posts(slack)) == 1
    assert thread(slack) == []
    simulator.set_status("acme-to-partner", "ACTIVE")
    await poll(harness, clock, 2)
    assert len(posts(slack)) == 1
    (card,) = current(slack)
    assert "esolved" in card
    assert len(thread(slack)) == 1
    assert "resolved after 51 min" in thread(slack)[0]


async def test_a_one_poll_blip_opens_nothing(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    consoled(simulator, "acme-to-partner")
    await poll(harness, clock)
    for _ in range(5):
        simulator.set_status("acme-to-partner", "ERROR")
        await poll(harness, clock)
        simulator.set_status("acme-to-partner", "ACTIVE")
        await poll(harness, clock)
    assert posts(slack) == []


async def test_a_stuck_queue_opens_a_card_and_draining_resolves_it(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    simulator.set_queue(SyncQueue.OUTGOING, 240)
    await poll(harness, clock, 20)  # not yet ten minutes of history
    assert posts(slack) == []
    await poll(harness, clock, 2)
    assert len(posts(slack)) == 1
    assert "240" in current(slack)[0]
    simulator.set_queue(SyncQueue.OUTGOING, 120)
    await poll(harness, clock, 2)
    assert len(posts(slack)) == 1
    assert "esolved" in current(slack)[0]


async def test_a_node_down_for_three_polls_gives_one_node_card_and_no_other(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    consoled(simulator, "acme-to-partner", "acme-to-vendor")
    await poll(harness, clock)
    down_for = 8  # polls; the site backs off meanwhile, so not every tick polls it
    simulator.fail("connections", 503, times=down_for)
    simulator.set_status("acme-to-partner", "ERROR")
    failed = 0
    while failed < 3:
        clock.advance(POLL)
        failed += await harness.tick()
    assert len(posts(slack)) == 1
    assert "unreachable" in current(slack)[0]
    while failed < down_for:  # down still, its connection in Error unseen: no other card
        clock.advance(POLL)
        failed += await harness.tick()
    assert len(posts(slack)) == 1
    simulator.set_status("acme-to-partner", "ACTIVE")
    while not harness.site("eu").health.reachable:
        clock.advance(POLL)
        await harness.tick()
    assert len(posts(slack)) == 1
    assert "esolved" in current(slack)[0]


async def test_twenty_connections_going_to_error_at_once_give_one_grouped_message(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    names = [f"acme-to-partner-{i:02d}" for i in range(20)]
    consoled(simulator, *names)
    await poll(harness, clock)
    for name in names:
        simulator.set_status(name, "ERROR")
    await poll(harness, clock, 2)
    assert len(posts(slack)) == 1
    assert "20 connections on eu" in current(slack)[0]
    await poll(harness, clock, 10)
    assert len(posts(slack)) == 1


async def test_new_cards_in_a_channel_are_a_minute_apart(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    consoled(simulator, "first", "second", "third")
    await poll(harness, clock)
    simulator.set_status("first", "ERROR")
    await poll(harness, clock)
    simulator.set_status("second", "ERROR")
    await poll(harness, clock)  # the first opens: its card goes at once
    simulator.set_status("third", "ERROR")
    await poll(harness, clock)  # the second opens, 30 s after that card: it waits
    assert len(posts(slack)) == 1
    await poll(harness, clock)  # the third opens and joins it; a minute after the first
    assert len(posts(slack)) == 2
    assert "second" in current(slack)[1]
    assert "third" in current(slack)[1]


async def test_without_alerts_nothing_is_posted_but_health_is_watched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    jira_url: str,
    slack: FakeSlack,
    bot_database_url: str,
    simulator: Simulator,
    clock: Clock,
) -> None:
    path = tmp_path / "quiet.toml"
    path.write_text(SITES_FILE.format(jira=jira_url, alerts=ALERTS).split("[alerts]")[0])
    monkeypatch.setenv("JIRA_TOKEN", JIRA_TOKEN)
    settings = settings_from_file(path, slack, bot_database_url, approvers=BOB)
    consoled(simulator, "acme-to-partner", status="ERROR")
    async with serving(settings, slack, simulator, clock) as harness:
        await poll(harness, clock, 5)
        metrics = await scrape(harness)
    assert posts(slack) == []
    assert posts(slack, APPROVAL_CHANNEL) == []
    assert (
        'exalate_connection_status{connection="acme-to-partner",site="eu",status="ERROR"} 1.0'
        in metrics
    )


async def test_metrics_show_statuses_queues_and_open_incidents(
    harness: Harness, simulator: Simulator, clock: Clock
) -> None:
    consoled(simulator, "acme-to-partner", status="ERROR")
    simulator.set_queue(SyncQueue.INCOMING, 7)
    await poll(harness, clock, 2)
    metrics = await scrape(harness)
    assert 'exalate_sync_queue{direction="incoming",site="eu"} 7.0' in metrics
    assert 'exalate_incidents_open{kind="connection",site="eu"} 1.0' in metrics


async def test_a_node_without_the_queue_endpoints_is_watched_without_them(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    simulator.remove_endpoint("syncevents")
    simulator.remove_endpoint("syncrequests")
    consoled(simulator, "acme-to-partner")
    await poll(harness, clock, 3)
    asked = [r for r in simulator.requests if "sync" in r.path]
    assert len(asked) == 2  # once each, then never again
    simulator.set_status("acme-to-partner", "ERROR")
    await poll(harness, clock, 2)
    assert len(posts(slack)) == 1


def card_value(slack: FakeSlack, action: Action, nth: int = 0, channel: str = ALERTS) -> str:
    """The value a control of the ``nth`` message in ``channel`` carries now (a menu's:
    its first option's)."""
    message = shown(slack, channel)[nth]
    for block in message.get("blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == action.value:
                return str(element.get("value") or element["options"][0]["value"])
    raise AssertionError(f"no {action.value} on the card: {json.dumps(message)}")


async def errored(harness: Harness, simulator: Simulator, clock: Clock) -> None:
    """``acme-to-partner`` in Error long enough for its card."""
    consoled(simulator, "acme-to-partner")
    await poll(harness, clock)
    simulator.set_status("acme-to-partner", "ERROR")
    await poll(harness, clock, 2)


async def history(harness: Harness, card_id: int) -> list[tuple[str, str]]:
    return [
        (who, what) for _, who, what in await harness.runtime.repository.incidents.history(card_id)
    ]


async def test_only_owners_may_acknowledge_and_every_press_is_audited(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    await errored(harness, simulator, clock)
    value = card_value(slack, Action.INCIDENT_ACK)
    refused = await harness.click(Action.INCIDENT_ACK, value, MALLORY, channel=ALERTS)
    await harness.settle()
    said = json.dumps(slack.calls_to(f"response_url:{refused}")[-1].args)
    assert "Only the site's approvers" in said
    assert "Acknowledged" not in current(slack)[0]
    await harness.click(Action.INCIDENT_ACK, value, CAROL, channel=ALERTS)  # in the admins group
    await harness.settle()
    assert "Acknowledged by <@U0CAROL>" in current(slack)[0]
    assert any("acknowledged" in note for note in thread(slack))
    again = await harness.click(Action.INCIDENT_ACK, value, BOB, channel=ALERTS)
    await harness.settle()
    assert "acknowledged it already" in json.dumps(slack.calls_to(f"response_url:{again}")[-1].args)
    assert await history(harness, int(value)) == [
        ("exalate-bot", "opened: acme-to-partner is ERROR"),
        (MALLORY, "refused acknowledge: not an owner"),
        (CAROL, "acknowledged"),
    ]
    clock.advance(timedelta(hours=2))
    await poll(harness, clock)
    assert not any("Still open" in note for note in thread(slack))  # acknowledged: no reminder


async def test_one_reminder_after_an_hour_and_a_snooze_holds_it(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    await errored(harness, simulator, clock)
    clock.advance(timedelta(minutes=61))
    await poll(harness, clock)
    reminders = [note for note in thread(slack) if "Still open" in note]
    assert len(reminders) == 1
    assert f"<@{BOB}>" in reminders[0]
    assert f"<!subteam^{ADMINS_GROUP}>" in reminders[0]
    await poll(harness, clock, 20)
    assert len([note for note in thread(slack) if "Still open" in note]) == 1
    snooze = card_value(slack, Action.INCIDENT_SNOOZE).replace(":1h", ":4h")
    await harness.click(Action.INCIDENT_SNOOZE, snooze, BOB, channel=ALERTS)
    await harness.settle()
    assert "Snoozed until" in current(slack)[0]
    clock.advance(timedelta(hours=3))
    await poll(harness, clock)
    assert len([note for note in thread(slack) if "Still open" in note]) == 1
    clock.advance(timedelta(hours=1))
    await poll(harness, clock)
    assert len([note for note in thread(slack) if "Still open" in note]) == 2  # the snooze ended


async def test_a_restart_posts_no_second_card_and_keeps_the_snooze(
    health_settings: Settings, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    async with serving(health_settings, slack, simulator, clock) as harness:
        await errored(harness, simulator, clock)
        snooze = card_value(slack, Action.INCIDENT_SNOOZE).replace(":1h", ":1d")
        await harness.click(Action.INCIDENT_SNOOZE, snooze, BOB, channel=ALERTS)
        await harness.settle()
    async with serving(health_settings, slack, simulator, clock) as harness:
        await poll(harness, clock, 5)
        simulator.set_status("acme-to-partner", "DEACTIVATED")
        await poll(harness, clock, 2)
        clock.advance(timedelta(hours=2))
        await poll(harness, clock)
    assert len(posts(slack)) == 1
    (card,) = current(slack)
    assert "Snoozed until" in card
    assert "DEACTIVATED" in card
    assert not any("Still open" in note for note in thread(slack))


async def test_health_answers_privately_with_each_site(
    harness: Harness, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    await errored(harness, simulator, clock)
    simulator.set_queue(SyncQueue.OUTGOING, 12)
    await poll(harness, clock)
    reply = await harness.command("health", user=MALLORY)
    await harness.settle()
    answered = json.dumps([c.args for c in slack.calls_to(f"response_url:{reply.response_url}")])
    assert "acme-to-partner" in answered
    assert "ERROR" in answered
    assert "12" in answered
    assert posts(slack, "D" + MALLORY) == []


async def test_doctor_checks_the_alerts_channel(
    health_settings: Settings, slack: FakeSlack
) -> None:
    checks = {c.name: c async for c in run_checks(health_settings, http_mode=True)}
    assert checks["Alerts channel"].ok is True
    slack.archive(ALERTS)
    checks = {c.name: c async for c in run_checks(health_settings, http_mode=True)}
    assert checks["Alerts channel"].ok is False


SUPPORT = "C0SUPPORTOPS"
LEADS, DAN = "S0SUPPORTLEADS", "U0DAN"
ROUTE = """
[[routes]]
projects = ["SUP"]
approvers = ["{leads}"]
channel = "{channel}"
"""


async def test_a_connection_the_bot_made_alerts_its_routes_owners(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    jira_url: str,
    bot_database_url: str,
    simulator: Simulator,
    clock: Clock,
) -> None:
    path = tmp_path / "routed.toml"
    path.write_text(
        SITES_FILE.format(jira=jira_url, alerts=ALERTS) + ROUTE.format(leads=LEADS, channel=SUPPORT)
    )
    monkeypatch.setenv("JIRA_TOKEN", JIRA_TOKEN)
    async with FakeSlack(
        usergroups={ADMINS_GROUP: [CAROL], LEADS: [DAN]},
        users=(*PEOPLE, DAN),
        channels={APPROVAL_CHANNEL, ALERTS, SUPPORT},
    ) as slack:
        settings = settings_from_file(path, slack, bot_database_url, approvers=BOB)
        async with serving(settings, slack, simulator, clock) as harness:
            assert (await harness.submit_request(project_key="SUP")).body == {}
            await harness.settle()
            (request,) = (await harness.runtime.services.listings.mine(ALICE, 1)).items
            await harness.click(Action.APPROVE, request.id, DAN, channel=SUPPORT)
            await harness.settle()
            (name,) = [c["name"] for c in simulator.connections.values()]
            simulator.accept(name)
            await poll(harness, clock)
            consoled(simulator, "made-in-the-console")
            await poll(harness, clock)
            simulator.set_status(name, "ERROR")
            simulator.set_status("made-in-the-console", "ERROR")
            await poll(harness, clock, 2)
            ours = card_value(slack, Action.INCIDENT_ACK, -1, channel=SUPPORT)
            assert name in current(slack, SUPPORT)[-1]
            assert "made-in-the-console" in current(slack, ALERTS)[0]
            refused = await harness.click(Action.INCIDENT_ACK, ours, BOB, channel=SUPPORT)
            await harness.settle()
            said = json.dumps(slack.calls_to(f"response_url:{refused}")[-1].args)
            assert "owners of route #1" in said
            await harness.click(Action.INCIDENT_ACK, ours, DAN, channel=SUPPORT)
            await harness.settle()
            assert f"Acknowledged by <@{DAN}>" in current(slack, SUPPORT)[-1]
