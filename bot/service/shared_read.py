"""One database read shared by identical asks that arrive together.

Fifty people asking ``/exalate status`` in the same second ask one question; reading and
counting the page fifty times only delays every ack. An answer is shared only while it
is as fresh as a person may expect:

- never older than the last write this process made (``writes()`` counts them, and a
  read begun before a write is not handed to anyone asking after it);
- never begun more than ``max_age`` seconds ago, so what another replica wrote shows
  within that time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from bot.cache import shared_context

T = TypeVar("T")


class SharedRead(Generic[T]):
    """``get()`` runs ``read`` or joins a run fresh enough to share."""

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
        self._run: asyncio.Task[T] | None = None
        self._run_writes = -1
        self._run_began = float("-inf")

    async def get(self) -> T:
        if not self._shareable():
            self._run_writes, self._run_began = self._writes(), self._clock()
            self._run = asyncio.create_task(self._read(), context=shared_context())
            self._run.add_done_callback(_retrieve_failure)
        assert self._run is not None
        return await asyncio.shield(self._run)  # one asker cancelled leaves the others

    def _shareable(self) -> bool:
        run = self._run
        if run is None or self._run_writes != self._writes():
            return False
        if self._clock() - self._run_began > self._max_age:
            return False
        return not run.done() or (not run.cancelled() and run.exception() is None)


def _retrieve_failure(task: asyncio.Task[object]) -> None:
    """A failed read is raised to its askers; retrieving it here keeps asyncio quiet when
    every asker has gone."""
    if not task.cancelled():
        task.exception()
