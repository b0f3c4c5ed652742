"""Who may approve, and what an approval does: one decision, one connection, one code."""

from __future__ import annotations

import asyncio

import pytest

from bot.approvals.errors import ApprovalError, Conflict, NotAllowed
from bot.approvals.model import ConnectionRequest, Status
from bot.approvals.rules import Draft, Field
from bot.exalate import ExalateBadRequest, ExalateTimeout
from tests.service.world import ALICE, BOB, CAROL, EVE, make_world


async def test_only_an_approver_may_approve() -> None:
    """Anyone can click the button; only the approvers' click does anything."""
    world = make_world()
    request = await world.submit()
    with pytest.raises(NotAllowed):
        await world.requests.approve(request.id, EVE)
    assert (await world.now(request)).status is Status.PENDING_APPROVAL
    assert [call for call in world.exalate().calls if call.startswith("create")] == []


async def test_an_approver_cannot_approve_their_own_request() -> None:
    """Four eyes: an approver asking for a connection needs another approver."""
    world = make_world()
    request = await world.submit(BOB)
    with pytest.raises(NotAllowed, match="another approver"):
        await world.requests.approve(request.id, BOB)
    approved = await world.requests.approve(request.id, CAROL)
    assert (approved.status, approved.decided_by) == (Status.INVITED, CAROL)


async def test_of_two_approvers_clicking_at_once_exactly_one_creates_the_connection() -> None:
    """Both read the request awaiting approval; the store's compare-and-set lets one
    through, the other is told who won. One create call, one code delivered."""
    world = make_world()
    request = await world.submit()
    results = await asyncio.gather(
        world.requests.approve(request.id, BOB),
        world.requests.approve(request.id, CAROL),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ConnectionRequest)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert (len(winners), len(losers)) == (1, 1), results
    assert winners[0].status is Status.INVITED
    assert world.exalate().calls.count("create acme_to_partner") == 1
    await world.flush()
    assert world.notifier.codes == [(request.id, "CODE0001")]
    decisions = [
        e for e in await world.store.history(request.id) if e.to_status is Status.INITIATING
    ]
    assert [e.actor for e in decisions] == [winners[0].decided_by]


async def test_a_click_on_a_card_with_a_fingerprint_the_bot_never_drew_changes_nothing() -> None:
    world = make_world()
    request = await world.submit()
    with pytest.raises(Conflict):
        await world.requests.approve(request.id, BOB, seen="0123456789abcdef")
    assert (await world.now(request)).status is Status.PENDING_APPROVAL
    assert [call for call in world.exalate().calls if call.startswith("create")] == []


async def test_a_retry_clicked_on_a_card_drawn_before_the_last_failure_is_refused() -> None:
    """The failure card carries the request's version: after a second failure, a click
    on the first one's card would retry something the approver has not seen."""
    world = make_world()
    refusal = ExalateBadRequest("Jira refused the project.", status=400)
    world.exalate().fail("create", refusal)
    request = await world.submit()
    first = await world.requests.approve(request.id, BOB)
    assert first.status is Status.FAILED
    world.exalate().fail("create", refusal)
    second = await world.requests.retry(request.id, BOB, seen=first.fingerprint)
    assert second.status is Status.FAILED

    with pytest.raises(Conflict):
        await world.requests.retry(request.id, CAROL, seen=first.fingerprint)
    assert world.exalate().calls.count("create acme_to_partner") == 2
    retried = await world.requests.retry(request.id, CAROL, seen=second.fingerprint)
    assert retried.status is Status.INVITED
    assert retried.requester == ALICE


async def test_an_approval_whose_later_steps_cannot_be_stored_is_said_to_stand() -> None:
    """The disk fills after the decision was stored: the approver is told the approval
    stands and will be settled, not that something went wrong; the request waits in
    ``initiating`` for the settling that follows a crash."""
    world = make_world()
    request = await world.submit()
    store = world.store
    real = store.annotate

    async def full_disk(request_id: int, **changes: object) -> ConnectionRequest | None:
        raise OSError(28, "No space left on device")

    store.annotate = full_disk  # type: ignore[method-assign]
    try:
        with pytest.raises(ApprovalError, match="Your approval is recorded"):
            await world.requests.approve(request.id, BOB)
    finally:
        store.annotate = real  # type: ignore[method-assign]
    stored = await world.now(request)
    assert (stored.status, stored.decided_by) == (Status.INITIATING, BOB)


async def test_a_person_at_the_open_limit_is_told_so_even_when_jira_is_slow() -> None:
    """Three requests waiting, and Jira too slow to check a fourth form: the answer is
    the limit (which submitting again cannot get past), not "submit again"."""
    world = make_world()
    for remote in ("p0", "p1", "p2"):
        await world.submit(remote=remote)
    world.exalate().fail("list", ExalateTimeout("slow"))
    world.site().connections.invalidate()
    draft = Draft("acme", "more", "", "", "SUP")
    refused = await world.requests.submit(draft, ALICE, check_within=5)
    assert refused.request is None
    assert "requests waiting for a decision" in refused.errors[Field.NAME]
