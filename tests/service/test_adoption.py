"""Which connection the bot takes as its own: only one that an attempt of the request,
begun with the name free, may have created. Never a connection that was there first."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from pydantic import SecretStr

from bot.approvals.errors import NotAllowed
from bot.approvals.model import CodeDelivery, CreateOutcome, Problem, Status
from bot.exalate import ConnectionSpec, CreatedConnection, ExalateBadRequest, ExalateServerError
from tests.fakes.exalate import FakeExalate
from tests.service.world import BOB, STUCK_AFTER, World, make_world

NAME = "acme_to_partner"


@dataclass
class CreateNeverAnswers(FakeExalate):
    """A create call that is received and never answered: the bot stops meanwhile."""

    received: asyncio.Event = field(default_factory=asyncio.Event)

    async def create_connection(self, spec: ConnectionSpec) -> CreatedConnection:
        self.calls.append(f"create {spec.name}")
        self.received.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def interrupted(world: World, exalate: CreateNeverAnswers) -> int:
    """A request whose approval stopped (the process died) while Exalate was creating."""
    request = await world.submit()
    approving = asyncio.create_task(world.requests.approve(request.id, BOB))
    await exalate.received.wait()
    approving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await approving
    return request.id


@dataclass
class CreateAnswersLate(FakeExalate):
    """A create call answered only when the test says so; ``listed_early``: the new
    connection is in Exalate's list before the answer comes back."""

    listed_early: bool = False
    received: asyncio.Event = field(default_factory=asyncio.Event)
    answer: asyncio.Event = field(default_factory=asyncio.Event)

    async def create_connection(self, spec: ConnectionSpec) -> CreatedConnection:
        early = self.add(spec.name) if self.listed_early else None
        self.received.set()
        await self.answer.wait()
        if early is None:
            return await super().create_connection(spec)
        self.calls.append(f"create {spec.name}")
        code = SecretStr("CODE-LATE")
        return CreatedConnection(
            id=early.id, name=early.name, status="PENDING", invitation_code=code
        )


def creates(exalate: FakeExalate) -> int:
    return sum(call.startswith("create") for call in exalate.calls)


async def test_an_interrupted_create_is_adopted_once_it_cannot_still_be_running() -> None:
    """The name was free before the call, so the connection that appeared is the call's:
    after ``stuck_after`` the poller adopts it, and an approver pastes its code."""
    exalate = CreateNeverAnswers()
    world = make_world(exalates={"default": exalate})
    request_id = await interrupted(world, exalate)
    created = exalate.add(NAME)  # the call went through after all

    await world.lifecycle.poll(world.site())
    stuck = await world.store.get(request_id)
    assert stuck is not None
    assert stuck.status is Status.INITIATING
    assert stuck.may_adopt

    world.clock.advance(STUCK_AFTER + timedelta(seconds=1))
    await world.lifecycle.poll(world.site())
    adopted = await world.store.get(request_id)
    assert adopted is not None
    assert (adopted.status, adopted.exalate_connection_id) == (Status.INVITED, str(created.id))
    assert adopted.code_delivery is CodeDelivery.NEVER_RECEIVED
    assert adopted.problem is Problem.CODE_NOT_RECEIVED  # the card offers Paste code
    assert creates(exalate) == 1
    assert world.listings.foreign_pending() == ()


async def test_an_interrupted_create_that_created_nothing_fails_for_a_retry() -> None:
    exalate = CreateNeverAnswers()
    world = make_world(exalates={"default": exalate})
    request_id = await interrupted(world, exalate)
    world.clock.advance(STUCK_AFTER + timedelta(seconds=1))
    await world.lifecycle.poll(world.site())
    failed = await world.store.get(request_id)
    assert failed is not None
    assert failed.status is Status.FAILED
    assert failed.problem is Problem.INTERRUPTED


async def test_a_name_there_before_an_interrupted_attempt_is_never_adopted() -> None:
    """Another process approved and stopped before it looked at Exalate's list: the
    connection of that name is not this request's, however long it waits."""
    world = make_world()
    request = await world.submit()
    initiating = await world.store.transition(
        request, Status.INITIATING, actor=BOB, at=world.clock(), decided_by=BOB
    )
    assert initiating is not None
    assert not initiating.may_adopt
    world.exalate().add(NAME)
    world.clock.advance(STUCK_AFTER + timedelta(seconds=1))
    await world.lifecycle.poll(world.site())
    failed = await world.now(request)
    assert (failed.status, failed.name_taken) == (Status.FAILED, True)
    assert failed.exalate_connection_id is None


async def test_a_name_taken_in_the_console_before_approval_fails_the_request_as_taken() -> None:
    """Created in the console between submission and approval: no create call, the
    request fails as taken, a retry is refused, and the connection is shown as foreign."""
    world = make_world()
    request = await world.submit()
    world.exalate().add(NAME)
    failed = await world.requests.approve(request.id, BOB)
    assert (failed.status, failed.last_attempt) == (Status.FAILED, CreateOutcome.NAME_TAKEN)
    assert creates(world.exalate()) == 0
    with pytest.raises(NotAllowed, match="did not create"):
        await world.requests.retry(request.id, BOB)
    await world.lifecycle.poll(world.site())
    assert (await world.now(request)).status is Status.FAILED
    assert [p.name for p in world.listings.foreign_pending()] == [NAME]


async def test_after_an_uncertain_create_a_retry_adopts_the_connection_that_appeared() -> None:
    """A 5xx may have created it: the connection of that name is the request's own, the
    poller does not call it foreign, and Retry adopts it instead of creating a second."""
    world = make_world()
    world.exalate().fail("create", ExalateServerError("Jira answered 502.", status=502))
    request = await world.submit()
    failed = await world.requests.approve(request.id, BOB)
    assert (failed.status, failed.last_attempt) == (Status.FAILED, CreateOutcome.UNCERTAIN)
    assert failed.may_adopt
    created = world.exalate().add(NAME)

    await world.lifecycle.poll(world.site())
    assert world.listings.foreign_pending() == ()
    adopted = await world.requests.retry(request.id, BOB)
    assert (adopted.status, adopted.exalate_connection_id) == (Status.INVITED, str(created.id))
    assert creates(world.exalate()) == 1
    assert world.notifier.codes == []  # the code never reached the bot: an approver pastes it


async def test_after_a_refused_create_a_connection_of_that_name_is_someone_elses() -> None:
    """A 4xx proves nothing was created: what appears later is another's, never adopted."""
    world = make_world()
    world.exalate().fail("create", ExalateBadRequest("Jira refused the project.", status=400))
    request = await world.submit()
    failed = await world.requests.approve(request.id, BOB)
    assert (failed.status, failed.last_attempt) == (Status.FAILED, CreateOutcome.REFUSED)
    assert not failed.may_adopt
    world.exalate().add(NAME)

    await world.lifecycle.poll(world.site())
    assert [p.name for p in world.listings.foreign_pending()] == [NAME]
    with pytest.raises(NotAllowed):
        await world.requests.retry(request.id, BOB)
    assert (await world.now(request)).status is Status.FAILED
    assert creates(world.exalate()) == 1


@pytest.mark.parametrize("listed_early", [False, True], ids=["failed", "adopted"])
async def test_a_late_answer_completes_a_request_another_replica_settled(
    listed_early: bool,
) -> None:
    """Replica A's create call outlives ``stuck_after``; replica B settles the request
    (failed as interrupted, or adopted without a code). A's answer, with the code, still
    completes it: invited, the code stored and delivered once."""
    exalate = CreateAnswersLate(listed_early=listed_early)
    a = make_world(exalates={"default": exalate})
    b = make_world(
        exalates=a.exalates, store=a.store, notifier=a.notifier, clock=a.clock, vault=a.vault
    )
    request = await a.submit()
    approving = asyncio.create_task(a.requests.approve(request.id, BOB))
    await exalate.received.wait()
    a.clock.advance(STUCK_AFTER + timedelta(seconds=1))
    await b.lifecycle.poll(b.site())
    settled = await a.now(request)
    assert settled.status is (Status.INVITED if listed_early else Status.FAILED)

    exalate.answer.set()
    await approving
    await a.flush()
    completed = await a.now(request)
    assert (completed.status, completed.code_delivery) == (Status.INVITED, CodeDelivery.DELIVERED)
    assert completed.error is None
    assert len(a.notifier.codes) == 1
    assert creates(exalate) == 1
