"""Owners decide, end to end: a route in ``exalate-bot.toml`` sends the Support project's
requests to the support leads' channel, needs two of them, and escalates to the Exalate
admins after four hours; everything else goes to the default approvers as before.

Signed requests over loopback, the Slack emulator and the Exalate simulator; on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.approvals.model import Status
from bot.cli.doctor import needed_scopes, run_checks
from bot.config import Settings
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
    Harness,
    serving,
    settings_from_file,
)

DAN, ERIN = "U0DAN", "U0ERIN"
LEADS = "S0SUPPORTLEADS"
SUPPORT_CHANNEL = "C0SUPPORTOPS"
ROUTES_FILE = """
[sites.default]
jira_url = "{jira}"
token_env = "JIRA_TOKEN"
local_short_name = "acme"

[[routes]]
projects = ["SUP", "HELP-*"]
approvers = ["{leads}"]
approvals = 2
channel = "{channel}"
escalate_after = "4h"
escalate_to = ["{admins}"]
"""


@pytest.fixture(name="slack")
async def _slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        usergroups={ADMINS_GROUP: [CAROL], LEADS: [DAN, ERIN, ALICE]},
        users=(ALICE, BOB, CAROL, MALLORY, DAN, ERIN),
        channels={APPROVAL_CHANNEL, SUPPORT_CHANNEL},
    ) as fake:
        yield fake


def _settings(
    jira_url: str,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack: FakeSlack,
    database_url: str,
    more_routes: str = "",
) -> Settings:
    path = folder / "exalate-bot.toml"
    names = {"jira": jira_url, "leads": LEADS, "channel": SUPPORT_CHANNEL, "admins": ADMINS_GROUP}
    path.write_text(ROUTES_FILE.format(**names) + more_routes)
    monkeypatch.setenv("JIRA_TOKEN", JIRA_TOKEN)
    return settings_from_file(path, slack, database_url, approvers=BOB)


@pytest.fixture(name="routed_settings")
def _routed_settings(
    jira_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack: FakeSlack,
    bot_database_url: str,
) -> Settings:
    return _settings(jira_url, tmp_path, monkeypatch, slack, bot_database_url)


@pytest.fixture(name="harness")
async def _harness(
    routed_settings: Settings, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> AsyncIterator[Harness]:
    async with serving(routed_settings, slack, simulator, clock) as harness:
        yield harness


def _cards(slack: FakeSlack, channel: str) -> list[dict[str, object]]:
    return [
        c.args
        for c in slack.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and "thread_ts" not in c.args
    ]


def _thread(slack: FakeSlack, channel: str) -> list[dict[str, object]]:
    return [
        c.args
        for c in slack.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and "thread_ts" in c.args
    ]


async def _submitted(harness: Harness, project: str = "SUP") -> int:
    """Alice's request for ``project``, stored and its card posted; returns its id."""
    assert (await harness.submit_request(project_key=project)).body == {}
    await harness.settle()
    page = await harness.runtime.services.listings.mine(ALICE, 1)
    return page.items[0].id


async def _reply(harness: Harness, action: Action, request_id: int, user: str) -> str:
    name = await harness.click(action, request_id, user, channel=SUPPORT_CHANNEL)
    await harness.settle()
    return str((await harness.private_reply(name)).args["text"])


async def test_two_distinct_leads_approve_and_nobody_else_counts(
    harness: Harness, slack: FakeSlack, simulator: Simulator
) -> None:
    """The card goes to the support channel and says who decides. Alice (a lead, but the
    requester), a repeated click by Dan, Mallory (no lead) and Bob (a default approver)
    leave it waiting, each told why privately; Erin's approval creates it, once."""
    request_id = await _submitted(harness)
    (card,) = _cards(slack, SUPPORT_CHANNEL)
    assert _cards(slack, APPROVAL_CHANNEL) == []
    drawn = json.dumps(card["blocks"])
    assert f"0 of 2 approvals; waiting for <!subteam^{LEADS}>" in drawn

    assert "another approver" in await _reply(harness, Action.APPROVE, request_id, ALICE)
    assert "is counted: 1 of 2" in await _reply(harness, Action.APPROVE, request_id, DAN)
    updated = await harness.slack.wait_for(
        "chat.update", lambda c: f"1 of 2 approvals: <@{DAN}> approved" in json.dumps(c.args)
    )
    assert updated.args["channel"] == SUPPORT_CHANNEL
    assert "approved this request already" in await _reply(harness, Action.APPROVE, request_id, DAN)
    assert "Only approvers" in await _reply(harness, Action.APPROVE, request_id, MALLORY)
    assert "Only approvers" in await _reply(harness, Action.APPROVE, request_id, BOB)
    request = await harness.repository_request(request_id)
    assert (request.status, request.approved_by) == (Status.PENDING_APPROVAL, (DAN,))
    assert simulator.create_calls == []

    await harness.click(Action.APPROVE, request_id, ERIN, channel=SUPPORT_CHANNEL)
    await harness.settle()
    request = await harness.repository_request(request_id)
    assert (request.status, request.approved_by) == (Status.INVITED, (DAN, ERIN))
    assert len(simulator.create_calls) == 1
    notes = [str(n["text"]) for n in _thread(slack, SUPPORT_CHANNEL)]
    assert any(f"<@{DAN}> approved (1 of 2)" in n for n in notes)
    assert any(f"<@{ERIN}> approved (2 of 2)" in n for n in notes)
    await harness.dm(ALICE, "invitation code")


async def test_a_request_no_route_matches_goes_to_the_default_approvers(
    harness: Harness, slack: FakeSlack
) -> None:
    request_id = await _submitted(harness, project="OPS")
    assert len(_cards(slack, APPROVAL_CHANNEL)) == 1
    assert _cards(slack, SUPPORT_CHANNEL) == []
    await harness.click(Action.APPROVE, request_id, BOB)
    await harness.settle()
    assert (await harness.repository_request(request_id)).status is Status.INVITED


async def test_escalation_fires_once_across_a_restart(
    routed_settings: Settings, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> None:
    """The bot stops three hours in and starts again: at four hours one message calls
    the admins in, in the channel; later ticks and another restart add nothing; then
    Carol (an admin) may decide with a lead."""
    async with serving(routed_settings, slack, simulator, clock) as harness:
        request_id = await _submitted(harness)
        clock.advance(timedelta(hours=3))
        await harness.tick()
    assert [n for n in _thread(slack, SUPPORT_CHANNEL) if n.get("reply_broadcast")] == []

    clock.advance(timedelta(hours=1))
    async with serving(routed_settings, slack, simulator, clock) as harness:
        await harness.tick()
        for _ in range(3):
            clock.advance(timedelta(minutes=1))
            await harness.tick()
    async with serving(routed_settings, slack, simulator, clock) as harness:
        await harness.tick()
        (call,) = [n for n in _thread(slack, SUPPORT_CHANNEL) if n.get("reply_broadcast")]
        assert f"<!subteam^{ADMINS_GROUP}>" in str(call["text"])
        request = await harness.repository_request(request_id)
        assert request.escalated_at == clock.now - timedelta(minutes=3)
        assert "is counted: 1 of 2" in await _reply(harness, Action.APPROVE, request_id, CAROL)
        await harness.click(Action.APPROVE, request_id, DAN, channel=SUPPORT_CHANNEL)
        await harness.settle()
        assert (await harness.repository_request(request_id)).status is Status.INVITED


class TestDoctor:
    async def test_a_route_in_place_is_described(self, routed_settings: Settings) -> None:
        checks = {c.name: c async for c in run_checks(routed_settings, http_mode=True)}
        route = checks["Route #1"]
        assert route.ok is True, route.detail
        assert route.detail == (
            f"SUP, HELP-* on every site: 2 distinct approvals from {LEADS}; card to "
            f"{SUPPORT_CHANNEL}; after 4h also {ADMINS_GROUP}"
        )
        assert "usergroups:read" in needed_scopes(routed_settings)

    async def test_a_channel_the_bot_cannot_post_to_and_an_unknown_group_fail(
        self, routed_settings: Settings, slack: FakeSlack
    ) -> None:
        slack.member_of.discard(SUPPORT_CHANNEL)
        checks = {c.name: c async for c in run_checks(routed_settings, http_mode=True)}
        assert checks["Route #1"].ok is False
        assert "/invite @exalate" in checks["Route #1"].detail
        assert checks["Approval channel"].ok is True  # the default channel is fine
        slack.fail("usergroups.users.list", "no_such_subteam")
        checks = {c.name: c async for c in run_checks(routed_settings, http_mode=True)}
        assert checks["Route #1"].ok is False
        assert "no_such_subteam; check [[routes]] #1 approvers" in checks["Route #1"].detail

    async def test_a_route_an_earlier_one_hides_is_warned_about(
        self,
        jira_url: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        slack: FakeSlack,
        bot_database_url: str,
    ) -> None:
        hidden = '\n[[routes]]\nprojects = ["HELP-DESK"]\napprovers = ["U0BOB"]\n'
        settings = _settings(jira_url, tmp_path, monkeypatch, slack, bot_database_url, hidden)
        checks = {c.name: c async for c in run_checks(settings, http_mode=True)}
        assert checks["Route #2"].ok is None
        assert checks["Route #2"].line().startswith("! Route #2: warning: never applies: route #1")
