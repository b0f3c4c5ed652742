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
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("Jira is down")
        return [f"load-{self.calls}"]


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
        """Past the ttl, or past an explicit max_age, the value is loaded again."""
        cache = TimedCache(loader, ttl=60, clock=clock)
        await cache.get(wait=1)
        clock.now = 61
        assert await cache.get(wait=1) == ["load-2"]
        assert await cache.get(wait=1, max_age=0) == ["load-3"]

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
