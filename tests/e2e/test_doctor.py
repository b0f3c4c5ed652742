"""`exalate-bot doctor` against the fake Slack and the simulator."""

from __future__ import annotations

from bot.config import Settings
from bot.doctor import Check, run_checks
from bot.exalate.simulator import Simulator
from bot.slack_emulator import FakeSlack
from tests.e2e.harness import APPROVAL_CHANNEL


async def _checks(settings: Settings, *, http_mode: bool = True) -> dict[str, Check]:
    return {check.name: check async for check in run_checks(settings, http_mode=http_mode)}


class TestDoctor:
    async def test_everything_in_place(self, settings: Settings, slack: FakeSlack) -> None:
        """All checks pass when Slack, Jira, Exalate and the database are as they should be."""
        slack.member_of.add(APPROVAL_CHANNEL)
        checks = await _checks(settings)
        assert {name: check.ok for name, check in checks.items()} == {
            "Slack bot token": True,
            "HTTP mode": True,
            "Approval channel": True,
            "Approvers": True,
            "Jira token": True,
            "Jira version": True,
            "Exalate REST API": True,
            "Database": True,
        }
        assert checks["Jira version"].detail == "9.12.15"

    async def test_each_problem_says_how_to_fix_it(
        self, settings: Settings, slack: FakeSlack, simulator: Simulator
    ) -> None:
        """Bot outside the channel, a refused Jira token, a missing group: ✗ with a fix."""
        slack.fail("usergroups.users.list", "no_such_subteam")
        simulator.fail("myself", 401)
        simulator.fail("connections", 404)
        checks = await _checks(settings)
        assert checks["Approval channel"].ok is False
        assert "/invite @exalate" in checks["Approval channel"].line()
        assert checks["Approvers"].ok is False
        assert "no_such_subteam" in checks["Approvers"].detail
        assert checks["Jira token"].ok is False
        assert "Personal Access Tokens" in checks["Jira token"].detail
        assert checks["Exalate REST API"].ok is False
        assert checks["Exalate REST API"].line().startswith("✗ Exalate REST API")

    async def test_unreadable_channel_is_not_a_failure(
        self, settings: Settings, slack: FakeSlack
    ) -> None:
        """Without channels:read the channel cannot be checked: said, not failed."""
        slack.fail("conversations.info", "missing_scope")
        checks = await _checks(settings, http_mode=False)
        assert checks["Approval channel"].ok is None
        assert checks["Approval channel"].line().startswith("!")
        assert checks["Socket Mode"].ok is True
