"""Who may decide: approvers by id or by group, re-checked on every click."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.approvals.errors import NotAllowed
from bot.approvals.model import ConnectionRequest, RequestFields, Status
from bot.approvals.routes import Routes, Rule
from bot.approvers import GROUP_CACHE_SECONDS, ApproverPolicy
from bot.ports import DirectoryUnavailable

T0 = datetime(2026, 11, 1, tzinfo=UTC)
APPROVERS = ("U0BOB", "U0ALICE", "S0ADMINS")
REQUEST = ConnectionRequest(
    id=1,
    status=Status.PENDING_APPROVAL,
    version=1,
    fields=RequestFields("acme", "p", "acme_to_p", "", "SUP"),
    requester="U0ALICE",
    created_at=T0,
    updated_at=T0,
)


class Directory:
    """Group membership that a test can change, and break."""

    def __init__(self) -> None:
        self.groups = {"S0ADMINS": {"U0CAROL"}}
        self.lookups = 0
        self.down = False
        self.gate: asyncio.Event | None = None  # a slow Slack: answers once it is set

    async def members(self, group_id: str) -> frozenset[str]:
        self.lookups += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise DirectoryUnavailable(group_id)
        return frozenset(self.groups.get(group_id, set()))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="directory")
def _directory() -> Directory:
    return Directory()


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="policy")
def _policy(directory: Directory, clock: Clock) -> ApproverPolicy:
    return ApproverPolicy(Routes((), Rule(APPROVERS)), directory, clock=clock)


class TestApproverPolicy:
    async def test_named_user_and_group_member_may_decide(self, policy: ApproverPolicy) -> None:
        """A listed user id and a member of a listed group are approvers."""
        await policy.ensure_can_decide("U0BOB", REQUEST)
        await policy.ensure_can_decide("U0CAROL", REQUEST)

    async def test_requester_never_decides_on_their_own(self, policy: ApproverPolicy) -> None:
        """Even a listed approver cannot approve their own request."""
        with pytest.raises(NotAllowed, match="another approver"):
            await policy.ensure_can_decide("U0ALICE", REQUEST)

    async def test_removal_from_the_group_takes_effect_within_the_cache_time(
        self, policy: ApproverPolicy, directory: Directory, clock: Clock
    ) -> None:
        """Membership is cached at most GROUP_CACHE_SECONDS, then asked again."""
        await policy.ensure_can_decide("U0CAROL", REQUEST)
        directory.groups["S0ADMINS"] = set()
        clock.now = GROUP_CACHE_SECONDS - 1
        await policy.ensure_can_decide("U0CAROL", REQUEST)
        assert directory.lookups == 1
        clock.now = GROUP_CACHE_SECONDS
        with pytest.raises(NotAllowed, match="Only approvers"):
            await policy.ensure_can_decide("U0CAROL", REQUEST)

    async def test_unreachable_directory_refuses_with_a_reason(
        self, policy: ApproverPolicy, directory: Directory
    ) -> None:
        """If Slack cannot list the group, the click is refused and the person told why."""
        directory.down = True
        with pytest.raises(NotAllowed, match="try again"):
            await policy.ensure_can_decide("U0CAROL", REQUEST)
        await policy.ensure_can_decide("U0BOB", REQUEST)  # named users need no lookup


class TestSlowDirectory:
    """Lookups are shared, and outlive a caller who cannot wait (a 3 s Slack window)."""

    async def test_callers_at_once_share_one_lookup(
        self, policy: ApproverPolicy, directory: Directory
    ) -> None:
        directory.gate = asyncio.Event()
        asks = [asyncio.create_task(policy.is_among("U0CAROL", APPROVERS)) for _ in range(10)]
        await asyncio.sleep(0)
        directory.gate.set()
        assert await asyncio.gather(*asks) == [True] * 10
        assert directory.lookups == 1

    async def test_a_caller_who_gives_up_leaves_the_answer_for_the_next(
        self, policy: ApproverPolicy, directory: Directory
    ) -> None:
        """Past its budget the caller stops waiting; the lookup goes on, and the person
        who submits again finds the answer without asking Slack again."""
        directory.gate = asyncio.Event()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await policy.is_among("U0CAROL", APPROVERS)
        directory.gate.set()
        assert await policy.is_among("U0CAROL", APPROVERS) is True
        assert directory.lookups == 1

    async def test_a_failure_reaches_every_waiter_and_the_next_call_asks_again(
        self, policy: ApproverPolicy, directory: Directory
    ) -> None:
        directory.down = True
        directory.gate = asyncio.Event()
        asks = [asyncio.create_task(policy.is_among("U0CAROL", APPROVERS)) for _ in range(3)]
        await asyncio.sleep(0)
        directory.gate.set()
        results = await asyncio.gather(*asks, return_exceptions=True)
        assert all(isinstance(result, DirectoryUnavailable) for result in results)
        directory.down = False
        assert await policy.is_among("U0CAROL", APPROVERS) is True
        assert directory.lookups == 2

    async def test_close_stops_lookups_nobody_waits_for(
        self, policy: ApproverPolicy, directory: Directory
    ) -> None:
        directory.gate = asyncio.Event()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await policy.is_among("U0CAROL", APPROVERS)
        await policy.close()
        directory.gate.set()
        directory.gate = None
        assert await policy.is_among("U0CAROL", APPROVERS) is True
        assert directory.lookups == 2

    async def test_a_clock_set_back_makes_membership_stale(
        self, policy: ApproverPolicy, directory: Directory, clock: Clock
    ) -> None:
        clock.now = 100
        await policy.is_among("U0CAROL", APPROVERS)
        clock.now = 50
        directory.groups["S0ADMINS"] = set()
        assert await policy.is_among("U0CAROL", APPROVERS) is False
