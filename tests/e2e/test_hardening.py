"""Faults and stale clicks: nothing lost, nothing duplicated, nothing leaked."""

from __future__ import annotations

from datetime import timedelta

from bot.approvals.model import Problem, Status
from handlers.ids import Action
from storage import RequestRepository, make_sessionmaker
from storage.replicas import Identity, Replicas
from tests.e2e.conftest import Clock
from tests.e2e.harness import ALICE, BOB, Harness
from tests.processes import ended_pid


def _repository(harness: Harness) -> RequestRepository:
    return RequestRepository(make_sessionmaker(harness.runtime.engine))


async def _stuck_in_initiating(
    harness: Harness,
    clock: Clock,
    *,
    checked_name: bool = True,
    initiated_by: str | None = None,
    aged: timedelta = timedelta(minutes=5),
) -> int:
    """A request whose bot stopped after committing `initiating`, before Exalate answered:
    by default after it saw the name free and called create, else before it looked;
    begun by the replica ``initiated_by`` (None: not recorded, as before replicas were),
    ``aged`` ago."""
    assert (await harness.submit_request()).body == {}
    request_id = await harness.request_id()
    repository = _repository(harness)
    request = await repository.get(request_id)
    assert request is not None
    moved = await repository.transition(
        request,
        Status.INITIATING,
        actor=BOB,
        at=clock.now,
        decided_by=BOB,
        initiated_by=initiated_by,
    )
    assert moved is not None
    if checked_name:
        await repository.annotate(request_id, name_absent_at=clock.now)
    clock.advance(aged)
    return request_id


async def _replica_of(harness: Harness, clock: Clock, identity: Identity) -> Replicas:
    """Another bot process on the harness's database, joined now."""
    replicas = Replicas(
        make_sessionmaker(harness.runtime.engine),
        identity,
        ttl=harness.runtime.replicas.ttl,
        clock=clock,
    )
    await replicas.join()
    return replicas


class TestInitiationOfAGoneReplica:
    """Issue: after a crash and an immediate restart, cards said "Creating the connection
    in Exalate…" for minutes. The replica that began an initiation is recorded; once it is
    known to be gone, its requests are settled at the next poll, not after stuck_after."""

    async def test_a_process_of_this_host_that_died_is_settled_at_once(
        self, harness: Harness, clock: Clock
    ) -> None:
        this = harness.runtime.replicas.me
        crashed = Identity(f"{this.host}:crashed", this.host, ended_pid(), this.pid_namespace)
        await _replica_of(harness, clock, crashed)
        request_id = await _stuck_in_initiating(
            harness, clock, initiated_by=crashed.id, aged=timedelta(seconds=1)
        )
        harness.simulator.create_in_console("acme_to_partner", code="SECRET-X1")
        await harness.tick()
        request = await harness.repository_request(request_id)
        assert request.status is Status.INVITED
        assert request.exalate_connection_id is not None
        await harness.card("invited")
        assert harness.simulator.create_calls == []

    async def test_a_live_replica_elsewhere_is_waited_for_until_its_heartbeat_stops(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Still beating on another host: it may yet get Exalate's answer. Silent for
        longer than the ttl (30 s here): gone, settled well before stuck_after."""
        elsewhere = await _replica_of(harness, clock, Identity("host-b:7:b", "host-b", 7, "host-b"))
        request_id = await _stuck_in_initiating(
            harness, clock, initiated_by=elsewhere.me.id, aged=timedelta(seconds=1)
        )
        await harness.tick()
        assert (await harness.repository_request(request_id)).status is Status.INITIATING
        clock.advance(elsewhere.ttl)
        await elsewhere.beat()
        clock.advance(elsewhere.ttl)
        await harness.tick()
        assert (await harness.repository_request(request_id)).status is Status.INITIATING
        clock.advance(timedelta(seconds=1))
        await harness.tick()
        failed = await harness.repository_request(request_id)
        assert failed.status is Status.FAILED
        assert failed.problem is Problem.INTERRUPTED

    async def test_this_replicas_own_initiations_are_never_settled_as_gone(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Recorded as this process but not running in it (approved, then the process
        lost track): only stuck_after settles it, as before."""
        request_id = await _stuck_in_initiating(
            harness,
            clock,
            initiated_by=harness.runtime.replicas.me.id,
            aged=timedelta(seconds=1),
        )
        await harness.tick()
        assert (await harness.repository_request(request_id)).status is Status.INITIATING


class TestACreateAnsweredAfterItsRequestWasSettled:
    async def test_its_code_still_reaches_the_requester(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Another replica took this one for gone (a pause longer than the ttl) and failed
        the request as interrupted while Exalate was still creating the connection. When
        Exalate answers, the code completes the request instead of being dropped."""
        assert (await harness.submit_request()).body == {}
        await harness.settle()
        request_id = await harness.request_id()
        harness.simulator.hold_creates()
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.simulator.holds(1)
        repository = _repository(harness)
        initiating = await harness.repository_request(request_id)
        failed = await repository.transition(
            initiating,
            Status.FAILED,
            actor="bot",
            at=clock.now,
            error="The bot stopped while creating this connection.",
            note="interrupted initiation",
        )
        assert failed is not None
        harness.simulator.release_creates()
        await harness.settle()
        (connection,) = harness.simulator.connections.values()
        await harness.dm(ALICE, str(connection["invitationCode"]))
        invited = await harness.repository_request(request_id)
        assert invited.status is Status.INVITED
        assert invited.has_invitation_code
        assert invited.exalate_connection_id == str(connection["id"])
        assert len(harness.simulator.create_calls) == 1
