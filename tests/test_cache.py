"""The short-lived cache that keeps Jira out of Slack's 3-second window."""

from __future__ import annotations

import asyncio

import pytest

from bot.cache import CacheUnavailable, TimedCache


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts loads; each load waits for ``gate`` when one is set, or fails on demand."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def __call__(self) -> list[str]:
        self.calls += 1
        number = self.calls  # named when asked, as a list is as of when it was asked for
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("Jira is down")
        return [f"load-{number}"]


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="loader")
def _loader() -> Loader:
    return Loader()


class TestTimedCache:
    async def test_fresh_value_is_served_without_loading(
        self, clock: Clock, loader: Loader
    ) -> None:
        """Within the ttl, Jira is asked once."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        assert await cache.get(wait=1) == ["load-1"]
        clock.now = 59
        assert await cache.get(wait=1) == ["load-1"]
        assert loader.calls == 1

    async def test_stale_value_is_reloaded(self, clock: Clock, loader: Loader) -> None:
        """Past the ttl the value is loaded again."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        await cache.get(wait=1)
        clock.now = 61
        assert await cache.get(wait=1) == ["load-2"]

    async def test_concurrent_callers_share_one_load(self, clock: Clock, loader: Loader) -> None:
        """Ten callers during one refresh cause one call to Jira."""
        loader.gate = asyncio.Event()
        cache = TimedCache(loader, ttl=60, clock=clock)
        waiting = [asyncio.create_task(cache.get(wait=1)) for _ in range(10)]
        await asyncio.sleep(0)
        loader.gate.set()
        assert {tuple(v) for v in await asyncio.gather(*waiting)} == {("load-1",)}
        assert loader.calls == 1

    async def test_slow_refresh_serves_the_last_good_value(
        self, clock: Clock, loader: Loader
    ) -> None:
        """When Jira is slower than the wait, the previous list is served at once."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        await cache.get(wait=1)
        clock.now = 61
        loader.gate = asyncio.Event()
        assert await cache.get(wait=0.01) == ["load-1"]
        loader.gate.set()

    async def test_failed_refresh_serves_the_last_good_value(
        self, clock: Clock, loader: Loader
    ) -> None:
        """A Jira error falls back to the previous list."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        await cache.get(wait=1)
        clock.now = 61
        loader.fail = True
        assert await cache.get(wait=1) == ["load-1"]

    async def test_nothing_cached_and_jira_down_is_unavailable(self, loader: Loader) -> None:
        """Without any value to fall back on, the caller is told plainly."""
        loader.fail = True
        with pytest.raises(CacheUnavailable, match="Jira is down"):
            await TimedCache(loader, ttl=60).get(wait=1)

    async def test_current_serves_stale_at_once_and_refreshes_behind(
        self, clock: Clock, loader: Loader
    ) -> None:
        """current() waits only for the very first load, never for a refresh."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        assert await cache.current(wait=1) == ["load-1"]
        clock.now = 61
        loader.gate = asyncio.Event()
        assert await cache.current(wait=1) == ["load-1"]
        await asyncio.sleep(0)  # one turn of the loop lets the background refresh begin
        assert loader.calls == 2
        loader.gate.set()

    async def test_peek_never_waits(self, clock: Clock, loader: Loader) -> None:
        """peek returns what is there (nothing at first) and starts a load."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        assert cache.peek() is None
        await cache.get(wait=1)
        assert cache.peek() == ["load-1"]


class TestGetSince:
    """``get_since``: a list asked for after a moment, never an older one."""

    async def test_a_value_asked_for_before_the_moment_is_not_served(
        self, clock: Clock, loader: Loader
    ) -> None:
        """However fresh by the ttl, a list asked for before the moment is loaded again."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        assert await cache.get(wait=1) == ["load-1"]
        clock.now = 1
        assert await cache.get_since(cache.now(), wait=1) == ["load-2"]
        assert await cache.get_since(1, wait=1) == ["load-2"]  # asked at 1: good for 1
        assert loader.calls == 2

    async def test_callers_arriving_together_share_one_load(
        self, clock: Clock, loader: Loader
    ) -> None:
        """Twenty asks at one moment: one load, which all of them wait for."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        loader.gate = asyncio.Event()
        asks = [asyncio.create_task(cache.get_since(0, wait=1)) for _ in range(20)]
        await asyncio.sleep(0)
        loader.gate.set()
        assert await asyncio.gather(*asks) == [["load-1"]] * 20
        assert loader.calls == 1

    async def test_a_load_begun_before_the_moment_is_not_joined(
        self, clock: Clock, loader: Loader
    ) -> None:
        """A load still running from before the moment may miss what appeared since:
        a new one is begun, and the older one finishing later does not overwrite it."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        loader.gate = asyncio.Event()
        early = asyncio.create_task(cache.get_since(0, wait=1))
        await asyncio.sleep(0)
        clock.now = 5
        late = asyncio.create_task(cache.get_since(5, wait=1))
        await asyncio.sleep(0)
        loader.gate.set()
        assert await late == ["load-2"]
        assert await early == ["load-1"]
        assert await cache.get_since(5, wait=1) == ["load-2"]
        assert loader.calls == 2

    async def test_no_answer_in_time_is_unavailable_never_stale(
        self, clock: Clock, loader: Loader
    ) -> None:
        """Past ``wait`` the caller gets CacheUnavailable, though an older list is held."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        await cache.get(wait=1)
        clock.now = 1
        loader.gate = asyncio.Event()
        with pytest.raises(CacheUnavailable):
            await cache.get_since(1, wait=0.01)
        loader.gate.set()

    async def test_asks_during_a_load_share_the_one_after_it(
        self, clock: Clock, loader: Loader
    ) -> None:
        """While a load begun earlier runs, later asks wait for one load that begins
        when it ends: two loads in all for a running one and ten later asks."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        loader.gate = asyncio.Event()
        first = asyncio.create_task(cache.get_since(0, wait=1))
        await asyncio.sleep(0)
        later = []
        for second in range(1, 11):
            clock.now = second
            later.append(asyncio.create_task(cache.get_since(second, wait=1)))
        await asyncio.sleep(0)
        loader.gate.set()
        assert await first == ["load-1"]
        assert await asyncio.gather(*later) == [["load-2"]] * 10
        assert loader.calls == 2

    async def test_a_cancelled_queued_load_is_replaced(self, clock: Clock, loader: Loader) -> None:
        """A queued load cut off with its waiter (as a closing loop does) does not block
        the asks that come after."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        loader.gate = asyncio.Event()
        first = asyncio.create_task(cache.get_since(0, wait=1))
        await asyncio.sleep(0)
        clock.now = 1
        waiter = asyncio.create_task(cache.get_since(1, wait=1))
        await asyncio.sleep(0)
        queued = cache._queued
        assert queued is not None
        for task in (waiter, queued):
            task.cancel()
        await asyncio.gather(waiter, queued, return_exceptions=True)
        clock.now = 2
        later = asyncio.create_task(cache.get_since(2, wait=1))  # the first load still runs
        await asyncio.sleep(0)
        loader.gate.set()
        assert await first == ["load-1"]
        assert await later == ["load-2"]
