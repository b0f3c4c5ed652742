"""`exalate-bot doctor` against the fake Slack and the simulator."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from bot.cli.doctor import REQUIRED_SCOPES, jira_transport, needed_scopes, run_checks
from bot.cli.doctor_slack import Check
from bot.config import Settings
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import ADDED_SCOPES, MANIFEST_SCOPES, FakeSlack
from storage import make_engine, upgrade_schema
from storage.schema import BASELINE, head_revision
from tests.e2e.harness import APPROVAL_CHANNEL, BOB


async def _checks(settings: Settings, *, http_mode: bool = True) -> dict[str, Check]:
    return {check.name: check async for check in run_checks(settings, http_mode=http_mode)}


async def _database_with_schema(settings: Settings, revision: str = "head") -> None:
    """The bot's tables in place, at ``revision``."""
    engine = make_engine(settings.database_url)
    try:
        await upgrade_schema(engine, revision)
    finally:
        await engine.dispose()


class TestDoctor:
    async def test_everything_in_place(
        self, settings: Settings, slack: FakeSlack, backend: str
    ) -> None:
        """All checks pass when Slack, Jira, Exalate and the database are as they should be
        (files to keep private only beside an SQLite database)."""
        await _database_with_schema(settings)
        checks = await _checks(settings)
        assert {name: check.ok for name, check in checks.items()} == {
            "Slack bot token": True,
            "HTTP mode": True,
            "Approval channel": True,
            "Approvers": True,
            "Jira URL": True,
            "Jira token": True,
            "Jira version": True,
            "Exalate REST API": True,
            "Sync queues": True,
            "Projects": True,
            "Database": True,
        } | ({"File modes": True} if backend == "sqlite" else {})
        assert checks["Projects"].detail == "5 open for incoming sync"
        assert checks["Jira version"].detail == "9.12.15"
        assert checks["Database"].detail == f"reachable, at the newest revision ({head_revision()})"
        assert checks["Approval channel"].detail == (
            f"{APPROVAL_CHANNEL}, public, not archived, the bot is a member"
        )
        assert checks["Approvers"].detail == "1 group(s) resolvable; 1 user(s) active in Slack"

    async def test_each_problem_says_how_to_fix_it(
        self, settings: Settings, slack: FakeSlack, simulator: Simulator
    ) -> None:
        """Bot outside the channel, a refused Jira token, a missing group: ✗ with a fix."""
        slack.member_of.discard(APPROVAL_CHANNEL)
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
        """A token installed from the previous manifest (no users:read, channels:read,
        groups:read): the token fails naming the scopes to add, and the channel and the
        approver users, which cannot be looked at, are said to be unchecked, not failed."""
        slack.workspace.scopes = set(MANIFEST_SCOPES) - set(ADDED_SCOPES)
        checks = await _checks(settings, http_mode=False)
        assert checks["Slack bot token"].ok is False
        assert checks["Slack bot token"].detail.startswith(
            "missing scopes users:read, channels:read: reinstall the app from manifest.yml"
        )
        assert checks["Approval channel"].ok is None
        assert (
            checks["Approval channel"]
            .line()
            .startswith(
                f"! Approval channel: {APPROVAL_CHANNEL}: cannot look: the bot token lacks "
                "channels:read"
            )
        )
        assert checks["Approvers"].ok is None
        assert "lacks users:read" in checks["Approvers"].detail
        assert checks["Socket Mode"].ok is True


class TestDoctorSlack:
    """How Slack really fails, each with the fix doctor names."""

    async def test_archived_channel(self, settings: Settings, slack: FakeSlack) -> None:
        slack.archive(APPROVAL_CHANNEL)
        channel = (await _checks(settings))["Approval channel"]
        assert channel.ok is False
        assert channel.detail == (
            f"{APPROVAL_CHANNEL} is archived: unarchive it in Slack (channel settings) or "
            "point EXALATE_APPROVAL_CHANNEL at another channel."
        )
        slack.unarchive(APPROVAL_CHANNEL)
        assert (await _checks(settings))["Approval channel"].ok is True

    async def test_public_channel_without_the_bot(
        self, settings: Settings, slack: FakeSlack
    ) -> None:
        slack.member_of.discard(APPROVAL_CHANNEL)
        channel = (await _checks(settings))["Approval channel"]
        assert channel.ok is False
        assert channel.detail == (
            f"{APPROVAL_CHANNEL}: the bot is not a member; invite the bot: /invite @exalate "
            "in that channel."
        )

    async def test_private_channel_without_the_bot(
        self, settings: Settings, slack: FakeSlack
    ) -> None:
        """Slack hides a private channel from a bot outside it: channel_not_found, which
        may also be a wrong id; both fixes are named."""
        slack.make_private(APPROVAL_CHANNEL)
        slack.member_of.discard(APPROVAL_CHANNEL)
        channel = (await _checks(settings))["Approval channel"]
        assert channel.ok is False
        assert channel.detail.startswith(f"{APPROVAL_CHANNEL}: channel_not_found: ")
        assert "check EXALATE_APPROVAL_CHANNEL" in channel.detail
        assert channel.detail.endswith(
            "or it is a private channel the bot is not in: invite it: /invite @exalate in "
            "that channel."
        )

    async def test_private_channel_with_the_bot(self, settings: Settings, slack: FakeSlack) -> None:
        slack.make_private(APPROVAL_CHANNEL)
        channel = (await _checks(settings))["Approval channel"]
        assert (channel.ok, channel.detail) == (
            True,
            f"{APPROVAL_CHANNEL}, private, not archived, the bot is a member",
        )

    async def test_private_channel_without_groups_read(
        self, settings: Settings, slack: FakeSlack
    ) -> None:
        """A private channel needs groups:read to be looked at: "!" naming it."""
        slack.make_private(APPROVAL_CHANNEL)
        slack.workspace.scopes.discard("groups:read")
        checks = await _checks(settings)
        assert checks["Slack bot token"].ok is True  # a C… id may be public: not known yet
        assert checks["Approval channel"].ok is None
        assert "the bot token lacks groups:read" in checks["Approval channel"].detail

    @pytest.mark.parametrize("reason", ["token_revoked", "invalid_auth", "account_inactive"])
    async def test_revoked_token(self, settings: Settings, slack: FakeSlack, reason: str) -> None:
        """A token Slack no longer honours fails with the fix; the other Slack checks
        cannot look and say so once each; Jira is checked all the same."""
        slack.revoke_token(reason)
        checks = await _checks(settings)
        assert checks["Slack bot token"].ok is False
        assert checks["Slack bot token"].detail == (
            f"Slack refuses the bot token ({reason}): reinstall the app and copy the new "
            "Bot User OAuth Token into SLACK_BOT_TOKEN."
        )
        for name in ("Approval channel", "Approvers"):
            assert checks[name].ok is None
            assert checks[name].detail == f"not checked: Slack refuses the bot token ({reason})."
        assert checks["Jira token"].ok is True
        assert [c.method for c in slack.calls if c.method != "auth.test"] == []

    async def test_missing_users_read(self, settings: Settings, slack: FakeSlack) -> None:
        slack.workspace.scopes.discard("users:read")
        checks = await _checks(settings)
        assert checks["Slack bot token"].ok is False
        assert checks["Slack bot token"].detail.startswith("missing scopes users:read: ")
        assert "reinstall the app from manifest.yml" in checks["Slack bot token"].detail
        assert checks["Approvers"].ok is None
        assert checks["Approvers"].detail == (
            "1 group(s) resolvable; 1 user id(s) not looked up: the bot token lacks "
            "users:read; reinstall the app from manifest.yml."
        )
        assert checks["Approval channel"].ok is True

    async def test_deactivated_approver(self, settings: Settings, slack: FakeSlack) -> None:
        slack.deactivate(BOB)
        approvers = (await _checks(settings))["Approvers"]
        assert approvers.ok is False
        assert approvers.detail.startswith(f"{BOB} deactivated in Slack: take them out of ")

    def test_the_scopes_follow_the_settings(self, settings: Settings) -> None:
        """users:read always; usergroups:read for groups; the channel's read scope by
        its kind, as far as its id tells."""
        assert needed_scopes(settings) == [*REQUIRED_SCOPES, "usergroups:read", "channels:read"]
        private = settings.model_copy(
            update={"exalate_approval_channel": "G0PRIVATE", "exalate_approvers": (BOB,)}
        )
        assert needed_scopes(private) == [*REQUIRED_SCOPES, "groups:read"]
        assert "users:read" in REQUIRED_SCOPES


class TestDoctorDatabase:
    @pytest.mark.parametrize("backend", ["sqlite"])
    async def test_missing_database_is_only_a_note(self, settings: Settings) -> None:
        """No database yet is fine: the bot creates it at first start. Doctor creates none."""
        checks = await _checks(settings)
        assert checks["Database"].ok is None
        assert "creates it at first start" in checks["Database"].detail
        assert not os.path.exists(settings.database_url.split("///", 1)[1])  # noqa: ASYNC240

    async def test_old_schema_is_reported_not_migrated(
        self, settings: Settings, backend: str, database_url: str
    ) -> None:
        """A database at an older revision: on SQLite a note (the bot upgrades it at
        start), on PostgreSQL a ✗ with the command to run; doctor changes nothing."""
        settings = settings.model_copy(update={"database_url": database_url})
        await _database_with_schema(settings, BASELINE)
        for _ in range(2):
            database = (await _checks(settings))["Database"]
            assert f"at revision {BASELINE}, this version needs {head_revision()}" in (
                database.detail
            )
            assert "exalate-bot migrate" in database.detail
            assert database.ok is (None if backend == "sqlite" else False)

    @pytest.mark.parametrize("backend", ["postgresql"])
    async def test_unreachable_server_is_one_line_without_the_password(
        self, settings: Settings
    ) -> None:
        dead = settings.model_copy(
            update={"database_url": "postgresql+asyncpg://bot:pw-Secret-9@127.0.0.1:9/bot"}
        )
        database = (await _checks(dead))["Database"]
        assert database.ok is False
        assert database.detail.startswith(
            "Cannot use the database postgresql+asyncpg://bot:***@127.0.0.1:9/bot: "
            "ConnectionRefusedError"
        )
        assert "pw-Secret-9" not in database.detail

    async def test_unreachable_slack_is_a_failure_not_a_crash(self, settings: Settings) -> None:
        """With nothing listening at SLACK_API_URL, the Slack checks fail with a hint."""
        dead = settings.model_copy(update={"slack_api_url": "http://127.0.0.1:9/api/"})
        checks = await _checks(dead)
        assert checks["Slack bot token"].ok is False
        assert "cannot reach Slack" in checks["Slack bot token"].detail


class TestJiraTransport:
    @pytest.mark.parametrize(
        ("url", "ok"),
        [
            ("https://jira.example.com", True),
            ("http://127.0.0.1:8080", True),
            ("http://localhost:8080", True),
            ("http://jira.example.com", False),
            ("http://10.0.0.5:8080/jira", False),
            ("http://LOCALHOST:8080", True),
            ("http://[::1]:8080", True),
            ("http://127.attacker.example", False),
        ],
    )
    def test_a_token_in_clear_is_a_failure(self, settings: Settings, url: str, ok: bool) -> None:
        """Plain http:// to anything but loopback carries the token in clear: ✗ (no call
        is made: the check reads the URL only)."""
        check = jira_transport(replace(settings.sites[0], jira_url=url))
        assert check.ok is ok
        assert ("travels in clear" in check.detail) is not ok
