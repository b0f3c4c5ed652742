"""Replicas and the lease, on both databases: who is gone, and who runs the life cycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import make_engine, make_sessionmaker, upgrade_schema
from storage.replicas import Identity, Replicas
from tests.processes import ended_pid, running_pid

TTL = timedelta(seconds=20)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(name="engine")
async def _engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    await upgrade_schema(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


def _replica(engine: AsyncEngine, clock: Clock, identity: Identity) -> Replicas:
    return Replicas(make_sessionmaker(engine), identity, ttl=TTL, clock=clock)


ELSEWHERE = Identity("db-host-2:4242:aaaa", "db-host-2", 4242, "db-host-2")


def _other_host(n: int) -> Identity:
    return Identity(f"h{n}:1:{n}", f"h{n}", 1, f"h{n}")


class TestGone:
    async def test_a_replica_that_never_joined_or_left_is_gone(
        self, engine: AsyncEngine, clock: Clock
    ) -> None:
        me = _replica(engine, clock, Identity.of_this_process())
        other = _replica(engine, clock, ELSEWHERE)
        await me.join()
        assert await me.gone(["never-joined"]) == {"never-joined"}
        await other.join()
        assert await me.gone([ELSEWHERE.id]) == set()
        await other.leave()
        assert await me.gone([ELSEWHERE.id]) == {ELSEWHERE.id}

    async def test_a_silent_replica_on_another_host_is_gone_after_the_ttl(
        self, engine: AsyncEngine, clock: Clock
    ) -> None:
        me = _replica(engine, clock, Identity.of_this_process())
        other = _replica(engine, clock, ELSEWHERE)
        await other.join()
        clock.now += TTL
        assert await me.gone([ELSEWHERE.id]) == set()  # a beat may be on its way
        await other.beat()
        clock.now += TTL
        assert await me.gone([ELSEWHERE.id]) == set()
        clock.now += timedelta(seconds=1)
        assert await me.gone([ELSEWHERE.id]) == {ELSEWHERE.id}

    async def test_a_process_of_this_host_that_ended_is_gone_at_once(
        self, engine: AsyncEngine, clock: Clock
    ) -> None:
        """No waiting out the ttl after a crash and a restart on the same host, also
        when the new process got the old one's pid (PID 1 in a container)."""
        me = Identity.of_this_process()
        ended = Identity(f"{me.host}:x:1", me.host, ended_pid(), me.pid_namespace)
        earlier_me = Identity(f"{me.host}:{me.pid}:earlier", me.host, me.pid, me.pid_namespace)
        with running_pid() as pid:
            alive = Identity(f"{me.host}:alive", me.host, pid, me.pid_namespace)
            for identity in (ended, earlier_me, alive):
                await _replica(engine, clock, identity).join()
            replicas = _replica(engine, clock, me)
            await replicas.join()
            ids = [ended.id, earlier_me.id, alive.id, me.id]
            assert await replicas.gone(ids) == {ended.id, earlier_me.id}

    async def test_containers_sharing_a_host_name_go_by_their_heartbeats(
        self, engine: AsyncEngine, clock: Clock
    ) -> None:
        """Two containers with one host name (host networking, a fixed hostname), each
        the PID 1 of its own PID namespace: neither takes the other for a restart of
        itself, nor looks the other's pid up in its own process table."""
        first = Identity("bot:1:aaaa", "bot", 1, "boot/4026531836")
        second = Identity("bot:1:bbbb", "bot", 1, "boot/4026532291")
        replicas = [_replica(engine, clock, identity) for identity in (first, second)]
        for replica in replicas:
            await replica.join()
        assert await replicas[0].gone([second.id]) == set()
        assert await replicas[1].gone([first.id]) == set()
        assert await replicas[0].hold("lifecycle")
        assert not await replicas[1].hold("lifecycle")
        clock.now += TTL + timedelta(seconds=1)
        await replicas[1].beat()
        assert await replicas[1].gone([first.id]) == {first.id}
        assert await replicas[1].hold("lifecycle")


class TestLease:
    async def test_one_replica_holds_it_until_it_is_gone(
        self, engine: AsyncEngine, clock: Clock
    ) -> None:
        first = _replica(engine, clock, ELSEWHERE)
        second = _replica(engine, clock, _other_host(3))
        for replica in (first, second):
            await replica.join()
        assert await first.hold("lifecycle")
        assert not await second.hold("lifecycle")
        assert await first.hold("lifecycle")
        clock.now += TTL + timedelta(seconds=1)  # first stops beating; second beats on
        await second.beat()
        assert await second.hold("lifecycle")
        assert not await first.hold("lifecycle")  # back from a stall: it lost the lease

    async def test_leaving_hands_it_over_at_once(self, engine: AsyncEngine, clock: Clock) -> None:
        first = _replica(engine, clock, ELSEWHERE)
        second = _replica(engine, clock, _other_host(3))
        for replica in (first, second):
            await replica.join()
        assert await first.hold("lifecycle")
        await first.leave()
        assert await second.hold("lifecycle")

    async def test_replicas_racing_for_a_free_lease_get_one_holder(
        self, database_url: str, clock: Clock
    ) -> None:
        """Eight replicas, each on an engine of its own, ask at the same moment, twice:
        one holder, the same one both times."""
        engines = [make_engine(database_url) for _ in range(8)]
        try:
            await upgrade_schema(engines[0])
            replicas = [_replica(engine, clock, _other_host(n)) for n, engine in enumerate(engines)]
            for replica in replicas:
                await replica.join()
            for _ in range(2):
                held = await asyncio.gather(*(r.hold("lifecycle") for r in replicas))
                assert held.count(True) == 1
            holders = {r.me.id for r, h in zip(replicas, held, strict=True) if h}
            assert len(holders) == 1
        finally:
            for engine in engines:
                await engine.dispose()

    async def test_a_beat_after_being_pruned_joins_again(
        self, engine: AsyncEngine, clock: Clock
    ) -> None:
        me = _replica(engine, clock, ELSEWHERE)
        other = _replica(engine, clock, Identity.of_this_process())
        await me.join()
        clock.now += timedelta(days=8)
        await other.join()
        await other.prune(timedelta(days=7))
        assert await other.gone([ELSEWHERE.id]) == {ELSEWHERE.id}
        await me.beat()
        assert await other.gone([ELSEWHERE.id]) == set()
