"""Sync health with bots in processes of their own: killed mid-incident and started
again, and two replicas on one PostgreSQL. One card per incident, whatever happens to
the processes; a snooze survives. The Slack emulator and the simulator run here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from bot.config import Settings
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import Call, FakeSlack
from handlers.ids import Action
from tests.e2e.bot_process import bot_process
from tests.e2e.harness import (
    ADMINS_GROUP,
    APPROVAL_CHANNEL,
    BOB,
    BOT_TOKEN,
    JIRA_TOKEN,
    PEOPLE,
    SECRET_KEY,
    SIGNING_SECRET,
    SlackSide,
)
from tests.e2e.test_sync_health import ALERTS, SITES_FILE


@pytest.fixture(name="slack")
async def _slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        usergroups={ADMINS_GROUP: []}, users=PEOPLE, channels={APPROVAL_CHANNEL, ALERTS}
    ) as fake:
        yield fake


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _environment(settings: Settings, folder: Path) -> dict[str, str]:
    """A replica's environment: the site and the alerts in a file, polling twice a second."""
    path = folder / "exalate-bot.toml"
    path.write_text(SITES_FILE.format(jira=settings.sites[0].jira_url, alerts=ALERTS))
    path.chmod(0o600)
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": settings.slack_api_url,
        "EXALATE_CONFIG": str(path),
        "JIRA_TOKEN": JIRA_TOKEN,
        "JIRA_RETRIES": "0",
        "DATABASE_URL": settings.database_url,
        "EXALATE_SECRET_KEY": SECRET_KEY,
        "EXALATE_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
        "EXALATE_APPROVERS": f"{BOB},{ADMINS_GROUP}",
        "EXALATE_POLL_INTERVAL": "0.2",
        "LOG_LEVEL": "INFO",
    }


def _card(call: Call) -> bool:
    return call.args.get("channel") == ALERTS and "thread_ts" not in call.args


def _note(*fragments: str) -> Callable[[Call], bool]:
    def matches(call: Call) -> bool:
        text = json.dumps(call.args)
        return (
            call.args.get("channel") == ALERTS
            and "thread_ts" in call.args
            and all(fragment in text for fragment in fragments)
        )

    return matches


def _cards(slack: FakeSlack) -> list[Call]:
    return [call for call in slack.calls_to("chat.postMessage") if _card(call)]


def _shown(slack: FakeSlack) -> dict[str, object]:
    """The one card in the alerts channel as it reads now."""
    (card,) = [m for (c, _), m in slack.messages.items() if c == ALERTS and "thread_ts" not in m]
    return card


def _snooze_value(card: Call) -> str:
    for block in card.args.get("blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == Action.INCIDENT_SNOOZE.value:
                value = str(element["options"][0]["value"])
                return value.replace(":1h", ":1d")
    raise AssertionError("the card has no snooze")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_killed_mid_incident_and_restarted_no_second_card_and_the_snooze_stays(
    settings: Settings,
    slack: FakeSlack,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    environment = _environment(settings, tmp_path)
    simulator.create_in_console("acme-to-partner", status="ACTIVE")
    async with bot_process(environment) as first:
        await first.says("lease_taken")
        simulator.set_status("acme-to-partner", "ERROR")
        card = await slack.wait_for("chat.postMessage", _card, timeout=20)
        side = SlackSide(slack, simulator, first.url, http)
        await side.click(Action.INCIDENT_SNOOZE, _snooze_value(card), BOB, channel=ALERTS)
        await slack.wait_for("chat.postMessage", _note("snoozed"), timeout=20)
        first.kill()
        await first.process.wait()
    async with bot_process(environment) as restarted:
        await restarted.says("lease_taken")
        simulator.set_status("acme-to-partner", "DEACTIVATED")
        await slack.wait_for("chat.postMessage", _note("DEACTIVATED"), timeout=20)
        assert "Snoozed until" in json.dumps(_shown(slack))  # redrawn before the note
        simulator.set_status("acme-to-partner", "ACTIVE")
        await slack.wait_for("chat.postMessage", _note("resolved after"), timeout=20)
    assert len(_cards(slack)) == 1
    assert "Resolved after" in json.dumps(_shown(slack))


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_replicas_post_one_card_per_incident(
    settings: Settings,
    slack: FakeSlack,
    simulator: Simulator,
    tmp_path: Path,
) -> None:
    environment = _environment(settings, tmp_path)
    names = [f"acme-to-partner-{n}" for n in range(5)]
    for name in names:
        simulator.create_in_console(name, status="ACTIVE")
    async with bot_process(environment) as one, bot_process(environment) as other:
        await (one if one.said("lease_taken") else other).says("lease_taken")
        for name in names:
            simulator.set_status(name, "ERROR")
        await slack.wait_for("chat.postMessage", _card, timeout=20)
        for name in names:
            simulator.set_status(name, "ACTIVE")
        for name in names:
            await slack.wait_for("chat.postMessage", _note(name, "resolved after"), timeout=20)
    assert len(_cards(slack)) == 1
    assert len([c for c in slack.calls_to("chat.postMessage") if _note("resolved after")(c)]) == 5
