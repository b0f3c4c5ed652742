"""Listener work that goes on after the ack: tracked, and held until the answers are out.

Bolt answers Slack as soon as a listener acks and lets the listener run on in a task
nobody holds. Wrapping each listener with ``track`` does two things:

* it records that task, so shutdown can wait for an approval that is halfway through
  creating a connection instead of cutting it off;
* right after its ``ack()`` the listener waits until no answer is pending, at most
  ``HOLD_LIMIT`` seconds: HTTP answers (``answer_first`` counts them) or Socket Mode acks
  (``answering``, around the Socket Mode handler's work). Under a burst every ack then
  leaves before anyone's slow work starts, so one person's modal or approval never
  delays another person's ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

Listener = TypeVar("Listener", bound=Callable[..., Awaitable[None]])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Well inside the 3 s a trigger_id lives: the modal still opens in time.
HOLD_LIMIT = 0.5


class InFlight:
    """Listener tasks that have not finished, and HTTP answers not yet written."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answering = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.asynccontextmanager
    async def answering(self) -> AsyncIterator[None]:
        """Counts one request (or Socket Mode envelope) until its answer is out."""
        self._answering += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._answering -= 1
            if self._answering == 0:
                self._quiet.set()

    def answer_first(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        """An aiohttp middleware that counts each request until its answer is written."""

        @web.middleware
        async def count_until_answered(
            request: web.Request, handler: Handler
        ) -> web.StreamResponse:
            async with self.answering():
                response = await handler(request)
                await response.prepare(request)
                await response.write_eof()
                return response

        return count_until_answered

    def track(self, listener: Listener) -> Listener:
        """Wrap ``listener``; Bolt still sees its parameters through ``__wrapped__``."""

        @functools.wraps(listener)
        async def tracked(*args: Any, **kwargs: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            if "ack" in kwargs:
                kwargs["ack"] = self._ack_then_yield(kwargs["ack"])
            try:
                await listener(*args, **kwargs)
            finally:
                self._tasks.discard(task)

        return tracked  # type: ignore[return-value]

    def _ack_then_yield(self, ack: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def ack_then_yield(*args: Any, **kwargs: Any) -> Any:
            result = await ack(*args, **kwargs)
            if not self._quiet.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet.wait(), HOLD_LIMIT)
            return result

        return ack_then_yield

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a bound, not a cancel
        """Wait up to ``timeout`` seconds for running listeners; returns how many remain."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        return len(self._tasks)
