"""One database read shared by identical asks that arrive together.

Fifty people asking ``/exalate status`` in the same second ask one question; reading and
counting the page fifty times only delays every ack. An answer is shared only while it
is as fresh as a person may expect:

- never older than the last write this process made (``writes()`` counts them, and a
  read begun before a write is not handed to anyone asking after it);
- never begun more than ``max_age`` seconds ago, so what another replica wrote shows
  within that time.

Whoever finds no such read waits for a new one. ``renew`` keeps that off the answers'
path while people keep asking: called once an answer is out, it reads again when the
shared read is getting old, and asks meanwhile are still answered from the old one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.cache import shared_context

T = TypeVar("T")


@dataclass(frozen=True)
class _Run(Generic[T]):
    """One read, with the count of this process's writes and the clock when it began."""

    task: asyncio.Task[T]
    writes: int
    began: float


class SharedRead(Generic[T]):
    """``get()`` hands out a read fresh enough to share, or runs one."""

    def __init__(
        self,
        read: Callable[[], Coroutine[Any, Any, T]],
        *,
        writes: Callable[[], int],
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._writes = writes
        self._max_age = max_age
        self._clock = clock
        self._latest: _Run[T] | None = None  # the latest run begun
        self._answered: _Run[T] | None = None  # the latest run that succeeded

    async def get(self) -> T:
        """Prefers a finished read to one on its way: a renewal is never waited for
        while the read it renews may still be shared."""
        for run in (self._answered, self._latest):
            if run is not None and self._shareable(run):
                return await asyncio.shield(run.task)  # one asker cancelled leaves the others
        return await asyncio.shield(self._begin().task)

    async def renew(self, older_than: float) -> None:
        """Read again now if the shared read began more than ``older_than`` seconds ago
        and none is on its way, so that the next asks need not wait for one."""
        answered, latest = self._answered, self._latest
        if answered is None or answered is not latest or not self._shareable(answered):
            return  # nothing shared yet, a read on its way, or asks read for themselves
        if self._clock() - answered.began > older_than:
            await asyncio.shield(self._begin().task)

    def _begin(self) -> _Run[T]:
        writes, began = self._writes(), self._clock()
        run = _Run(asyncio.create_task(self._read(), context=shared_context()), writes, began)
        run.task.add_done_callback(lambda _: self._finished(run))
        self._latest = run
        return run

    def _finished(self, run: _Run[T]) -> None:
        if run.task.cancelled() or run.task.exception() is not None:
            return  # raised to its askers; retrieved here so asyncio stays quiet without them
        if self._answered is None or run.began >= self._answered.began:
            self._answered = run

    def _shareable(self, run: _Run[T]) -> bool:
        age = self._clock() - run.began  # below zero: the clock was set back, trust nothing
        if run.writes != self._writes() or not 0 <= age <= self._max_age:
            return False
        task = run.task
        return not task.done() or (not task.cancelled() and task.exception() is None)
