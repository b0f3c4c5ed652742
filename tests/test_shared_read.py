"""SharedRead: identical asks arriving together share one read, never a stale one."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from bot.service.shared_read import SharedRead


class Source:
    """A read that can be held open, counting how often it ran."""

    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0
        self.now = 100.0
        self.release = asyncio.Event()
        self.release.set()
        self.fail_next = False
        self.reading = asyncio.Event()

    async def read(self) -> int:
        self.reads += 1
        self.reading.set()
        number = self.reads
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database gone")
        return number


@pytest.fixture(name="source")
def _source() -> Source:
    return Source()


@pytest.fixture(name="shared")
def _shared(source: Source) -> SharedRead[int]:
    return SharedRead(
        source.read, writes=lambda: source.writes, max_age=2.0, clock=lambda: source.now
    )


async def test_asks_arriving_together_share_one_read(
    source: Source, shared: SharedRead[int]
) -> None:
    source.release.clear()
    asks = [asyncio.create_task(shared.get()) for _ in range(50)]
    await asyncio.sleep(0)  # every ask has started
    source.release.set()
    assert await asyncio.gather(*asks) == [1] * 50
    assert source.reads == 1


async def test_a_write_of_this_process_is_never_missed(
    source: Source, shared: SharedRead[int]
) -> None:
    """Also when the write lands while a read is on its way: asks after it wait for a
    read begun after it."""
    source.release.clear()
    before = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    source.writes += 1
    after = asyncio.create_task(shared.get())
    source.release.set()
    assert (await before, await after) == (1, 2)
    assert await shared.get() == 2  # nothing written since: shared


async def test_a_read_is_shared_for_max_age_only(source: Source, shared: SharedRead[int]) -> None:
    """What another replica wrote shows within max_age."""
    assert await shared.get() == 1
    source.now += 2.0
    assert await shared.get() == 1
    source.now += 0.1
    assert await shared.get() == 2


async def test_a_clock_set_back_shares_nothing(source: Source, shared: SharedRead[int]) -> None:
    """The clock is the runtime's wall clock: set back an hour, it must not make a read
    look young for an hour."""
    assert await shared.get() == 1
    source.now -= 3600
    assert await shared.get() == 2


async def test_a_failed_read_is_raised_and_not_shared_afterwards(
    source: Source, shared: SharedRead[int]
) -> None:
    source.fail_next = True
    with pytest.raises(RuntimeError, match="database gone"):
        await shared.get()
    assert await shared.get() == 2


async def test_one_asker_giving_up_leaves_the_read_to_the_others(
    source: Source, shared: SharedRead[int]
) -> None:
    source.release.clear()
    first, second = asyncio.create_task(shared.get()), asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    first.cancel()
    source.release.set()
    assert await second == 1
    assert first.cancelled()


async def test_the_read_carries_none_of_the_first_askers_context() -> None:
    """The read is everyone's: a listener past its ack (which gives way to answers) may
    start it, and another asker may be waiting on it before its own answer."""
    marker = contextvars.ContextVar("marker", default="no one's")

    async def read() -> str:
        return marker.get()

    shared = SharedRead(read, writes=lambda: 0, max_age=1.0)
    marker.set("the first asker's")
    assert await shared.get() == "no one's"


async def _renewal_held_open(source: Source, shared: SharedRead[int]) -> asyncio.Task[None]:
    """A first read, then 1.5 s later a renewal (``older_than=1.0``) whose read has begun
    and is held open until ``source.release`` is set."""
    assert await shared.get() == 1
    source.now += 1.5
    source.release.clear()
    source.reading.clear()
    renewal = asyncio.create_task(shared.renew(older_than=1.0))
    await source.reading.wait()
    return renewal


async def test_a_renewal_keeps_asks_off_the_database(
    source: Source, shared: SharedRead[int]
) -> None:
    """Renewed once past ``older_than``: asks meanwhile get the read it renews at once,
    and asks after it the new one."""
    renewal = await _renewal_held_open(source, shared)
    assert source.reads == 2
    ask = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    assert ask.done()  # answered in its first step: it did not wait for the renewal
    assert ask.result() == 1
    source.release.set()
    await renewal
    assert await shared.get() == 2
    assert source.reads == 2


async def test_a_read_younger_than_asked_is_not_renewed(
    source: Source, shared: SharedRead[int]
) -> None:
    await shared.renew(older_than=1.0)  # nothing read yet: nothing to renew
    assert await shared.get() == 1
    source.now += 1.0
    await shared.renew(older_than=1.0)
    assert source.reads == 1


async def test_past_max_age_asks_join_the_renewal_on_its_way(
    source: Source, shared: SharedRead[int]
) -> None:
    renewal = await _renewal_held_open(source, shared)
    source.now += 0.6  # the first read is past max_age, the renewal is not
    ask = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    source.release.set()
    assert await ask == 2
    await renewal
    assert source.reads == 2


async def test_a_write_outdates_the_read_and_its_renewal(
    source: Source, shared: SharedRead[int]
) -> None:
    """Nothing begun before this process's write is handed out after it, and nothing
    outdated is renewed: the next ask reads."""
    renewal = await _renewal_held_open(source, shared)
    source.writes += 1
    ask = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    source.release.set()
    assert (await ask, source.reads) == (3, 3)
    await renewal
    source.writes += 1
    source.now += 1.5
    await shared.renew(older_than=1.0)
    assert source.reads == 3


async def test_a_failed_renewal_leaves_the_read_it_renews(
    source: Source, shared: SharedRead[int]
) -> None:
    assert await shared.get() == 1
    source.now += 1.5
    source.fail_next = True
    with pytest.raises(RuntimeError, match="database gone"):
        await shared.renew(older_than=1.0)
    assert await shared.get() == 1
