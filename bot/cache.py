"""A short-lived, single-flight cache for lists read from Jira.

Slack gives every listener 3 seconds. Reading Jira's project list or Exalate's
connection list inside that window would spend the budget on a server we do not
control, so listeners read from here: fresh values are served at once, a stale value
triggers one shared refresh that callers wait on for a bounded time, and a failed
refresh falls back to the last good value if there is one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


log = logging.getLogger(__name__)


def shared_context() -> contextvars.Context:
    """The context for work shared by everyone who asks (a load, a read): empty, so none
    of the first asker's state rides along. A listener past its ack gives way to
    answers still pending (``bot.runtime.answer_first``); a load a submission waits on before
    its own answer must not."""
    return contextvars.Context()


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
        self._value_asked_at = float("-inf")  # when the load that gave the value began
        self._refresh: asyncio.Task[T] | None = None
        self._refresh_asked_at = float("-inf")
        self._queued: asyncio.Task[T] | None = None  # begins when ``_refresh`` ends

    def now(self) -> float:
        """A reading of the cache's clock, for ``get_since``."""
        return self._clock()

    def _fresh(self) -> bool:
        return self._value is not None and self._clock() - self._loaded_at < self._ttl

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

    async def get(self, *, wait: float) -> T:
        """The value, refreshed if older than the ttl.

        Waits at most ``wait`` seconds for a refresh; past that, or if it fails, the
        last good value is served, and without one CacheUnavailable is raised.
        """
        if self._fresh():
            assert self._value is not None
            return self._value
        task = self._start_refresh()
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=wait)
        except Exception as error:
            if self._value is not None:
                return self._value
            raise CacheUnavailable(str(error) or type(error).__name__) from error

    async def get_since(self, moment: float, *, wait: float) -> T:
        """A value loaded by a call that began at or after ``moment`` (a ``now()``
        reading), so it holds everything that existed at ``moment``.

        Callers asking at about the same time share one load. Unlike ``get``, an older
        value is never served: past ``wait`` seconds, or on failure, CacheUnavailable.
        """
        if self._value is not None and self._value_asked_at >= moment:
            return self._value
        try:
            return await asyncio.wait_for(asyncio.shield(self._load_since(moment)), timeout=wait)
        except Exception as error:
            raise CacheUnavailable(str(error) or type(error).__name__) from error

    def _load_since(self, moment: float) -> asyncio.Task[T]:
        """A load that begins at or after ``moment``: the running one if it did; else the
        one queued to begin when it ends, shared by everyone who asks meanwhile."""
        running = self._refresh
        if running is None or running.done():
            return self._launch_refresh()
        if self._refresh_asked_at >= moment:
            return running
        if self._queued is None or self._queued.done():  # done: cancelled with its loop
            self._queued = asyncio.create_task(self._after(running), context=shared_context())
            self._queued.add_done_callback(_note_failure)
        return self._queued

    async def _after(self, running: asyncio.Task[T]) -> T:
        with contextlib.suppress(Exception):
            await asyncio.shield(running)
        self._queued = None
        return await self._launch_refresh()

    def _start_refresh(self) -> asyncio.Task[T]:
        if self._refresh is None or self._refresh.done():
            return self._launch_refresh()
        return self._refresh

    def _launch_refresh(self) -> asyncio.Task[T]:
        asked_at = self._clock()
        self._refresh = asyncio.create_task(self._reload(asked_at), context=shared_context())
        self._refresh.add_done_callback(_note_failure)
        self._refresh_asked_at = asked_at
        return self._refresh

    async def _reload(self, asked_at: float) -> T:
        value = await self._load()
        if asked_at >= self._value_asked_at:  # an older load finishing late loses
            self._value, self._value_asked_at = value, asked_at
            self._loaded_at = self._clock()
        return value


def _note_failure(task: asyncio.Task[object]) -> None:
    """Retrieve a background refresh's failure, so asyncio does not report it as lost."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("cache_refresh_failed kind=%s", type(error).__name__)
