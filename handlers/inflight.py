"""Listener work that goes on after the ack: tracked, and kept out of the answers' way.

Bolt answers Slack as soon as a listener acks and lets the listener run on in a task
nobody holds. Wrapping each listener with ``track`` does two things:

* it records that task, so shutdown can wait for an approval that is halfway through
  creating a connection instead of cutting it off;
* after its ``ack()``, and again around each HTTP request it makes (to Slack, to Jira:
  ``trace_config``, before the request and once its answer is in), the listener waits
  while any answer is pending, at most ``HOLD_LIMIT`` seconds: HTTP answers
  (``answer_first`` counts them) or Socket Mode acks (``answering``, around the Socket
  Mode handler's work).

When no answer is pending any more, the waiting listeners go on one per turn of the event
loop, not all at once. asyncio runs every ready task once per turn before it reads the
sockets again, so fifty listeners released together (fifty modals to open, about a
millisecond of work each) would stand before the next person's ack; released one by one,
a new request is read at the next turn and its ack stops the release. The same holds
for fifty approvals whose Exalate calls come back together.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

Listener = TypeVar("Listener", bound=Callable[..., Awaitable[None]])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Well inside the 3 s a trigger_id lives: the modal still opens in time.
HOLD_LIMIT = 0.5

_acked = contextvars.ContextVar("acked", default=False)
"""True in a listener's task (and in tasks it starts) once its ack is out."""


class InFlight:
    """Listener tasks that have not finished, answers not yet sent, and the listeners
    waiting for those answers."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answering = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def answering(self) -> AsyncIterator[None]:
        """Counts one request (or Socket Mode envelope) until its answer is out."""
        self._answering += 1
        try:
            yield
        finally:
            self._answering -= 1
            self._release_one()

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

    def trace_config(self) -> aiohttp.TraceConfig:
        """For the bot's HTTP session: each request made after a listener's ack gives
        way before it starts and again when its answer is in."""

        async def give_way(*_: object) -> None:
            await self.give_way()

        config = aiohttp.TraceConfig()
        config.on_request_start.append(give_way)
        config.on_request_end.append(give_way)
        return config

    def track(self, listener: Listener) -> Listener:
        """Wrap ``listener``; Bolt still sees its parameters through ``__wrapped__``."""

        @functools.wraps(listener)
        async def tracked(*args: Any, **kwargs: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            if "ack" in kwargs:
                kwargs["ack"] = self._ack_then_give_way(kwargs["ack"])
            try:
                await listener(*args, **kwargs)
            finally:
                self._tasks.discard(task)

        return tracked  # type: ignore[return-value]

    def _ack_then_give_way(
        self, ack: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def ack_then_give_way(*args: Any, **kwargs: Any) -> Any:
            result = await ack(*args, **kwargs)
            _acked.set(True)
            await self.give_way()
            return result

        return ack_then_give_way

    @property
    def waiting(self) -> int:
        """Listeners waiting for their turn."""
        return len(self._waiting)

    async def give_way(self) -> None:
        """In a listener whose ack is out: wait for a turn that no answer needs, at most
        ``HOLD_LIMIT`` seconds. Elsewhere (before the ack, in background jobs) return at
        once: work an answer waits for must not wait for answers."""
        if not _acked.get() or (self._answering == 0 and not self._waiting):
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        self._release_one()
        try:
            await asyncio.wait_for(turn, HOLD_LIMIT)
        except TimeoutError:
            pass  # held long enough: go on anyway
        finally:
            if turn.cancelled():  # timed out or stopped: leave the line
                self._waiting.remove(turn)
            # The next one goes at the next turn of the loop, after the sockets were read.
            asyncio.get_running_loop().call_soon(self._release_one)

    def _release_one(self) -> None:
        """Let the first listener in line go on, if no answer is pending."""
        if self._answering == 0 and self._waiting:
            self._waiting.popleft().set_result(None)

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a bound, not a cancel
        """Wait up to ``timeout`` seconds for running listeners; returns how many remain."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        return len(self._tasks)
