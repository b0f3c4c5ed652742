"""`exalate-bot doctor`'s "Sync queues" check: against the simulator through every check,
and alone against the in-memory fake for what the simulator does not vary."""

from __future__ import annotations

import pytest

from bot.cli.doctor import run_checks
from bot.cli.doctor_queues import sync_queues
from bot.cli.doctor_slack import Check
from bot.config import Settings
from bot.exalate import BearerToken, ExalateServerError
from bot.exalate.models import SyncQueue
from bot.exalate.statuses import SYNC_EVENTS_PATH, SYNC_REQUESTS_PATH
from bot.sandbox.exalate_simulator import Simulator
from bot.site_config import SiteConfig
from tests.fakes.exalate import FakeExalate

SITE = SiteConfig("default", "https://jira.example.test", BearerToken("t"))


@pytest.fixture(name="backend")
def _backend() -> str:
    """The queues are read from Jira alone: one database kind is enough."""
    return "sqlite"


async def _checks(settings: Settings) -> dict[str, Check]:
    return {check.name: check async for check in run_checks(settings, http_mode=True)}


class TestAgainstTheSimulator:
    async def test_both_sizes_are_shown(self, settings: Settings, simulator: Simulator) -> None:
        simulator.set_queue(SyncQueue.OUTGOING, 3)
        simulator.set_queue(SyncQueue.INCOMING, 12)

        check = (await _checks(settings))["Sync queues"]

        assert check.line() == "✓ Sync queues: outgoing 3, incoming 12"

    async def test_empty_queues_pass(self, settings: Settings) -> None:
        check = (await _checks(settings))["Sync queues"]

        assert (check.ok, check.detail) == (True, "outgoing 0, incoming 0")

    async def test_a_node_without_one_endpoint_is_a_warning_naming_that_queue(
        self, settings: Settings, simulator: Simulator
    ) -> None:
        """The incoming queue goes unwatched; the outgoing one is still shown, and no
        check fails for it."""
        simulator.set_queue(SyncQueue.OUTGOING, 3)
        simulator.remove_endpoint("syncrequests")

        checks = await _checks(settings)

        assert checks["Sync queues"].line() == (
            "! Sync queues: warning: outgoing 3; the incoming queue is not watched on this "
            f"node: it has no {SYNC_REQUESTS_PATH} endpoint (Exalate's REST monitoring API; "
            "its Exalate version may not serve it)."
        )
        assert [name for name, check in checks.items() if check.ok is False] == []

    async def test_a_node_without_either_endpoint_names_both(
        self, settings: Settings, simulator: Simulator
    ) -> None:
        simulator.remove_endpoint("syncevents")
        simulator.remove_endpoint("syncrequests")

        check = (await _checks(settings))["Sync queues"]

        assert check.ok is None
        assert check.detail.startswith(
            "warning: the outgoing and incoming queues are not watched on this node: it has "
            f"no {SYNC_EVENTS_PATH} or {SYNC_REQUESTS_PATH} endpoint"
        )

    async def test_a_server_error_fails_as_other_site_checks_do(
        self, settings: Settings, simulator: Simulator
    ) -> None:
        simulator.fail("syncevents", 500)

        check = (await _checks(settings))["Sync queues"]

        assert check.ok is False
        assert check.detail.startswith(
            f"Exalate failed with a server error (HTTP 500 on GET {SYNC_EVENTS_PATH})."
        )

    async def test_a_refusal_fails_naming_the_token(
        self, settings: Settings, simulator: Simulator
    ) -> None:
        simulator.fail("syncrequests", 403)

        check = (await _checks(settings))["Sync queues"]

        assert check.ok is False
        assert check.detail.startswith(
            f"Jira refused this call for the Jira user whose personal access token is in "
            f"JIRA_TOKEN (HTTP 403 on GET {SYNC_REQUESTS_PATH})."
        )


class TestAgainstTheFake:
    async def test_it_reads_each_queue_once(self) -> None:
        exalate = FakeExalate(queues={SyncQueue.OUTGOING: 1, SyncQueue.INCOMING: 0})

        check = await sync_queues(exalate, SITE)

        assert (check.name, check.ok, check.detail) == (
            "Sync queues",
            True,
            "outgoing 1, incoming 0",
        )
        assert exalate.calls == ["queue outgoing", "queue incoming"]

    async def test_a_missing_endpoint_is_a_warning(self) -> None:
        exalate = FakeExalate(missing={SyncQueue.OUTGOING})

        check = await sync_queues(exalate, SITE)

        assert check.ok is None
        assert check.detail.startswith(
            "warning: incoming 0; the outgoing queue is not watched on this node: it has no "
            f"{SYNC_EVENTS_PATH} endpoint"
        )

    async def test_another_error_is_left_to_the_caller(self) -> None:
        """`_site_checks` turns it into ✗ with its message, as for every site check."""
        exalate = FakeExalate()
        exalate.fail("queue incoming", ExalateServerError("Exalate failed.", status=503))

        with pytest.raises(ExalateServerError):
            await sync_queues(exalate, SITE)

        assert exalate.calls == ["queue outgoing", "queue incoming"]
        assert await sync_queues(exalate, SITE) == Check(
            "Sync queues", True, "outgoing 0, incoming 0"
        )

    async def test_a_failure_queued_for_either_queue_hits_the_next_read(self) -> None:
        exalate = FakeExalate()
        exalate.fail("queue", ExalateServerError("Exalate failed.", status=503))

        with pytest.raises(ExalateServerError):
            await exalate.queue_size(SyncQueue.OUTGOING)

        assert await exalate.queue_size(SyncQueue.OUTGOING) == 0
        assert exalate.calls == ["queue outgoing", "queue outgoing"]
