"""Owners decide: a route's approvers, its count of distinct approvals, its escalation;
and a request decided under the rule it was made with."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.approvals.errors import Conflict, NotAllowed
from bot.approvals.messages import Notice
from bot.approvals.model import ConnectionRequest, Status
from bot.approvals.routes import Route, Rule
from bot.approvals.rules import Draft
from bot.approvers import GROUP_CACHE_SECONDS
from bot.exalate.models import Project
from tests.service.world import ALICE, BOB, CAROL, EVE, World, make_world

DAN, ERIN = "U0DAN", "U0ERIN"  # support leads
ADMIN = "U0ADMIN"  # in the escalation group
LEADS, ADMINS = "S0LEADS", "S0ADMINS"

SUP_TWO = Route(
    Rule((LEADS,), approvals=2, channel="C0SUPPORT", route=1),
    projects=("SUP", "HELP-*"),
)
ESCALATING = Route(
    Rule(
        (DAN, ERIN),
        escalate_after=timedelta(hours=4),
        escalate_to=(ADMINS,),
        route=1,
    ),
    projects=("SUP",),
)


class Groups:
    """User groups a test can change; removing someone takes effect at once here (the
    policy's cache is what a real Slack would be seen through)."""

    def __init__(self) -> None:
        self.members = {LEADS: {DAN, ERIN, ALICE}, ADMINS: {ADMIN}}

    async def members_of(self, group_id: str) -> frozenset[str]:
        return frozenset(self.members.get(group_id, set()))


class Directory:
    def __init__(self, groups: Groups) -> None:
        self._groups = groups

    async def members(self, group_id: str) -> frozenset[str]:
        return await self._groups.members_of(group_id)


def routed(*routes: Route, groups: Groups | None = None, **kwargs: object) -> World:
    world = make_world(routes=routes, groups=Directory(groups or Groups()), **kwargs)  # type: ignore[arg-type]
    world.exalate().projects.append(Project(id="2", key="OPS", name="Operations"))
    return world


def creates(world: World) -> list[str]:
    return [call for call in world.exalate().calls if call.startswith("create")]


async def test_a_request_keeps_the_rule_of_the_route_it_matched() -> None:
    world = routed(SUP_TWO)
    request = await world.submit()
    assert request.route == SUP_TWO.rule
    assert world.requests.rule_of(request).approvals == 2


async def test_a_request_no_route_matches_is_decided_by_the_default_approvers() -> None:
    world = routed(Route(Rule((DAN,), route=1), projects=("OPS",)))
    request = await world.submit()
    assert request.route is None
    with pytest.raises(NotAllowed, match="Only approvers"):
        await world.requests.approve(request.id, DAN)
    approved = await world.requests.approve(request.id, BOB)
    assert approved.status is Status.INVITED


async def test_two_distinct_approvals_create_the_connection_once() -> None:
    """The first approval is counted and noted in the thread; the second creates."""
    world = routed(SUP_TWO)
    request = await world.submit()
    first = await world.requests.approve(request.id, DAN)
    assert (first.status, first.approved_by) == (Status.PENDING_APPROVAL, (DAN,))
    assert first.fingerprint == request.fingerprint  # the card's buttons stay valid
    assert creates(world) == []
    second = await world.requests.approve(request.id, ERIN, seen=request.fingerprint)
    assert (second.status, second.approved_by) == (Status.INVITED, (DAN, ERIN))
    assert second.decided_by == ERIN
    assert creates(world) == ["create acme_to_partner"]
    await world.flush()
    notes = [e for e in world.notifier.events if e[0] == "note_in_thread"]
    assert notes == [("note_in_thread", request.id, Notice.APPROVED)] * 2
    history = [(e.actor, e.note) for e in await world.store.history(request.id)]
    assert (DAN, "approved (1 of 2)") in history
    assert (ERIN, "approved (2 of 2)") in history


async def test_the_requester_a_second_click_and_an_outsider_leave_it_waiting() -> None:
    """Alice is in the leads' group and still never counts for her own request; Dan's
    second click is told so; Eve is no lead."""
    world = routed(SUP_TWO)
    request = await world.submit(ALICE)
    await world.requests.approve(request.id, DAN)
    with pytest.raises(NotAllowed, match="another approver"):
        await world.requests.approve(request.id, ALICE)
    with pytest.raises(NotAllowed, match="approved this request already; it has 1 of the 2"):
        await world.requests.approve(request.id, DAN)
    with pytest.raises(NotAllowed, match="Only approvers"):
        await world.requests.approve(request.id, EVE)
    with pytest.raises(NotAllowed, match="Only approvers"):
        await world.requests.approve(request.id, BOB)  # a default approver, not this route's
    now = await world.now(request)
    assert (now.status, now.approved_by) == (Status.PENDING_APPROVAL, (DAN,))
    assert creates(world) == []


async def test_one_rejection_ends_it_and_no_approval_counts_after() -> None:
    world = routed(SUP_TWO)
    request = await world.submit()
    await world.requests.approve(request.id, DAN)
    await world.requests.reject(request.id, ERIN, "not this quarter")
    with pytest.raises(Conflict):
        await world.requests.approve(request.id, ERIN)
    assert (await world.now(request)).status is Status.REJECTED
    assert creates(world) == []


async def test_simultaneous_approvals_count_each_once_and_create_once() -> None:
    """Three leads at once on a route needing two: two approvals count, the connection
    is created by whichever made the second, the third is told it was decided."""
    groups = Groups()
    groups.members[LEADS] |= {CAROL}
    world = routed(SUP_TWO, groups=groups)
    request = await world.submit()
    results = await asyncio.gather(
        *(world.requests.approve(request.id, who) for who in (DAN, ERIN, CAROL)),
        return_exceptions=True,
    )
    done = [r for r in results if isinstance(r, ConnectionRequest)]
    assert len(done) == 2, results
    assert [type(r) for r in results if not isinstance(r, ConnectionRequest)] == [Conflict]
    final = await world.now(request)
    assert final.status is Status.INVITED
    assert len(final.approved_by) == 2
    assert creates(world) == ["create acme_to_partner"]


async def test_someone_removed_from_the_group_can_no_longer_approve() -> None:
    groups = Groups()
    world = routed(SUP_TWO, groups=groups)
    request = await world.submit()
    await world.requests.approve(request.id, DAN)
    groups.members[LEADS] = {DAN}  # Erin left the team; Dan's approval stays
    world.clock.advance(timedelta(seconds=GROUP_CACHE_SECONDS))
    with pytest.raises(NotAllowed, match="Only approvers"):
        await world.requests.approve(request.id, ERIN)
    assert (await world.now(request)).approved_by == (DAN,)


async def test_a_request_made_before_a_route_edit_is_decided_under_its_snapshot() -> None:
    """The file now says one approval from Bob suffices; the request made before still
    needs two leads. A new request gets the new rule."""
    world = routed(SUP_TWO)
    before = await world.submit()
    edited = routed(
        Route(Rule((BOB,), route=1), projects=("SUP",)),
        store=world.store,
        exalates=world.exalates,
        clock=world.clock,
    )
    with pytest.raises(NotAllowed):
        await edited.requests.approve(before.id, BOB)
    assert (await edited.requests.approve(before.id, DAN)).status is Status.PENDING_APPROVAL
    assert (await edited.requests.approve(before.id, ERIN)).status is Status.INVITED
    after = await edited.submit(name="acme_to_second")
    assert (await edited.requests.approve(after.id, BOB)).status is Status.INVITED


async def test_escalation_calls_in_the_group_once_after_its_time() -> None:
    """Before four hours the admins may not decide; at four hours one lifecycle run
    marks it (two replicas' runs, one mark), the card says so and the group is told
    in the channel; then an admin may approve."""
    world = routed(ESCALATING)
    request = await world.submit()
    with pytest.raises(NotAllowed):
        await world.requests.approve(request.id, ADMIN)
    world.clock.advance(timedelta(hours=4) - timedelta(seconds=1))
    await world.lifecycle.expire_and_remind()
    assert (await world.now(request)).escalated_at is None
    world.clock.advance(timedelta(seconds=1))
    replica = routed(ESCALATING, store=world.store, exalates=world.exalates, clock=world.clock)
    await asyncio.gather(world.lifecycle.expire_and_remind(), replica.lifecycle.expire_and_remind())
    await world.lifecycle.expire_and_remind()
    await world.flush()
    escalated = await world.now(request)
    assert escalated.escalated_at == world.clock.now
    notes = [e for e in world.notifier.events if e[2] == Notice.ESCALATED]
    assert notes == [("note_in_thread", request.id, Notice.ESCALATED)]
    marks = [e for e in await world.store.history(request.id) if e.note == "escalated"]
    assert len(marks) == 1
    approved = await world.requests.approve(request.id, ADMIN)
    assert approved.status is Status.INVITED


async def test_every_question_of_who_may_decide_asks_the_route() -> None:
    """Reject, paste and hand over are the route's approvers'; a default approver is
    refused on a routed request. History is theirs to read."""
    world = routed(SUP_TWO)
    request = await world.submit()
    for refused in (
        world.requests.reject(request.id, BOB, "no"),
        world.requests.check_can_hand_over(request.id, BOB),
    ):
        with pytest.raises(NotAllowed):
            await refused
    _, events = await world.listings.history(request.fields.connection_name, BOB)
    assert events is None
    _, events = await world.listings.history(request.fields.connection_name, DAN)
    assert events is not None
    assert (await world.requests.check_can_hand_over(request.id, DAN)).id == request.id


async def test_bulk_reject_rejects_only_what_the_approver_may_decide() -> None:
    """Alice's flood: the SUP requests are the leads', the OPS one the default
    approvers'. A lead's reject-all leaves the OPS one waiting."""
    world = routed(SUP_TWO)
    sup = await world.submit(name="acme_sup")
    ops = await world.requests.submit(_draft("acme_ops", "OPS"), ALICE, check_within=5)
    assert ops.request is not None
    rejected = await world.requests.reject_all_from(sup.id, DAN, "flood")
    assert [r.id for r in rejected] == [sup.id]
    assert (await world.now(ops.request)).status is Status.PENDING_APPROVAL


async def test_app_home_shows_each_approver_what_they_may_decide() -> None:
    world = routed(SUP_TWO)
    sup = await world.submit(name="acme_sup")
    ops = await world.requests.submit(_draft("acme_ops", "OPS"), ALICE, check_within=5)
    assert ops.request is not None

    async def waiting(user: str) -> list[int] | None:
        page = await world.listings.awaiting_decision(user, 10)
        return None if page is None else [r.id for r in page.items]

    assert await waiting(DAN) == [sup.id]
    assert await waiting(BOB) == [ops.request.id]
    assert await waiting(EVE) is None
    await world.requests.approve(sup.id, DAN)
    assert await waiting(DAN) == []  # approved already: nothing more for Dan to do
    assert await waiting(ERIN) == [sup.id]


def _draft(name: str, project: str) -> Draft:
    return Draft("acme", "partner", name, "", project)
