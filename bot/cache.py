"""A short-lived, single-flight cache for lists read from Jira.

Slack gives every listener 3 seconds. Reading Jira's project list or Exalate's
connection list inside that window would spend the budget on a server we do not
control, so listeners read from here: fresh values are served at once, a stale value
triggers one shared refresh that callers wait on for a bounded time, and a failed
refresh falls back to the last good value if there is one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


log = logging.getLogger(__name__)


class CacheUnavailable(Exception):
    """No value could be had within the time allowed, and none was cached before."""


class TimedCache(Generic[T]):
    """Holds one value loaded by ``load``; considered fresh for ``ttl`` seconds."""

    def __init__(
        self,
        load: Callable[[], Awaitable[T]],
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._value: T | None = None
        self._loaded_at = float("-inf")
        self._refresh: asyncio.Task[T] | None = None

    def _fresh(self, max_age: float | None = None) -> bool:
        limit = self._ttl if max_age is None else max_age
        return self._value is not None and self._clock() - self._loaded_at < limit

    def peek(self) -> T | None:
        """The last value loaded, however old, without waiting; starts a refresh if stale."""
        self.refresh_soon()
        return self._value

    async def current(self, *, wait: float) -> T:
        """Any cached value at once (refreshing it in the background if stale); only
        when nothing was ever loaded, wait up to ``wait`` seconds for the first load."""
        value = self.peek()
        return value if value is not None else await self.get(wait=wait)

    def refresh_soon(self) -> None:
        """Start a refresh in the background if the value is stale; returns at once."""
        if not self._fresh():
            self._start_refresh()

    def invalidate(self) -> None:
        """Mark the value stale, e.g. after creating a connection the list lacks."""
        self._loaded_at = float("-inf")

    async def get(self, *, wait: float, max_age: float | None = None) -> T:
        """The value, refreshed if older than ``max_age`` (default: the ttl).

        Waits at most ``wait`` seconds for a refresh; past that, or if it fails, the
        last good value is served, and without one CacheUnavailable is raised.
        """
        if self._fresh(max_age):
            assert self._value is not None
            return self._value
        task = self._start_refresh()
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=wait)
        except Exception as error:
            if self._value is not None:
                return self._value
            raise CacheUnavailable(str(error) or type(error).__name__) from error

    def _start_refresh(self) -> asyncio.Task[T]:
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._reload())
            self._refresh.add_done_callback(_note_failure)
        return self._refresh

    async def _reload(self) -> T:
        value = await self._load()
        self._value = value
        self._loaded_at = self._clock()
        return value


def _note_failure(task: asyncio.Task[object]) -> None:
    """Retrieve a background refresh's failure, so asyncio does not report it as lost."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("cache_refresh_failed kind=%s", type(error).__name__)
