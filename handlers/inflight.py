"""Keeps track of listener work still running after its ack.

Bolt answers Slack as soon as a listener acks and lets the listener run on in a task
nobody holds. Wrapping each listener with ``track`` records that task, so shutdown can
wait for an approval that is halfway through creating a connection instead of cutting
it off.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

Listener = TypeVar("Listener", bound=Callable[..., Awaitable[None]])


class InFlight:
    """The set of listener tasks that have not finished yet."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def track(self, listener: Listener) -> Listener:
        """Wrap ``listener``; Bolt still sees its parameters through ``__wrapped__``."""

        @functools.wraps(listener)
        async def tracked(*args: Any, **kwargs: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            try:
                await listener(*args, **kwargs)
            finally:
                self._tasks.discard(task)

        return tracked  # type: ignore[return-value]

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a bound, not a cancel
        """Wait up to ``timeout`` seconds for running listeners; returns how many remain."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        return len(self._tasks)
