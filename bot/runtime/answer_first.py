"""Answers first: every ack leaves the moment its listener gives it, and the work a
listener does after its ack keeps out of the answers' way. The bot's whole ack-speed
machinery is here, and only what the benchmarks showed pays (BENCHMARKS.md §1: the
bot's acks against bare Bolt apps that only ack, before and after each part).

Bolt's default listener runner starts a listener in a task and then checks every 10 ms
whether it has acked, so every answer waited for the next check: at least 10 ms, and
under a burst a check or two more. The bot's app has Bolt await each listener instead
(``process_before_response``), and ``track`` makes what Bolt awaits return the moment
the listener acks, while the listener runs on in a task of its own. It also:

* records that task, so shutdown can wait for an approval that is halfway through
  creating a connection instead of cutting it off, and ``/metrics`` can count them;
* after its ``ack()``, and again around each HTTP request it makes (to Slack, to Jira:
  ``trace_config``, before the request and once its answer is in), makes the listener
  wait while any answer is pending, at most ``HOLD_LIMIT`` seconds: HTTP answers
  (``answer_first`` counts them) or Socket Mode acks (``answering``, around the Socket
  Mode handler's work).

When no answer is pending any more, the waiting listeners go on one at a time, each
after ``QUIET_TURNS`` turns of the event loop with no answer pending, not all at once.
asyncio runs every ready task once per turn before it reads the sockets again, so fifty
listeners released together (fifty modals to open, about a millisecond of work each)
would stand before the next person's ack; released one by one, a request that arrives
meanwhile is counted before the next one goes, and its ack stops the release. The same
holds for fifty approvals whose Exalate calls come back together, and for listeners
held as long as ``HOLD_LIMIT``: those go on although answers are pending, but one per
turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

# Bolt's own way to run an envelope through the app and send its ack; private to Bolt,
# so pinned by the version range in pyproject.toml and covered by the Socket Mode tests.
from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

Listener = TypeVar("Listener", bound=Callable[..., Coroutine[Any, Any, None]])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger(__name__)

# Well inside the 3 s a trigger_id lives: the modal still opens in time.
HOLD_LIMIT = 0.5
QUIET_TURNS = 4
"""Turns of the event loop without an answer pending before held work goes on. A Socket
Mode envelope read from the socket in one turn reaches the bot's handler, which counts
it, three turns later (slack_sdk's reader task, its queue, a task per envelope); an
HTTP request, two. Released sooner, work would start in front of a request already read."""
ACK_WAIT = 3.0
"""How long Bolt waits for a listener to ack (its ``ack_timeout``), and so the wrapper."""

_acked = contextvars.ContextVar("acked", default=False)
"""True in a listener's task (and in tasks it starts) once its ack is out."""


def _settle(future: asyncio.Future[bool], value: bool) -> None:
    """Resolve ``future`` unless one of the others racing to (an ack, the listener's
    end, a timer) already did."""
    if not future.done():
        future.set_result(value)


async def _settled_within(future: asyncio.Future[bool], seconds: float) -> bool:
    """``future``'s result, or False once ``seconds`` pass first: a timer on the one
    future, cheaper than ``asyncio.wait`` or ``wait_for`` on a path taken per request."""
    timer = asyncio.get_running_loop().call_later(seconds, _settle, future, False)
    try:
        return await future
    finally:
        timer.cancel()


class InFlight:
    """Listener tasks that have not finished, answers not yet sent, and the listeners
    waiting for those answers."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answering = 0
        self._waiting: deque[asyncio.Future[bool]] = deque()
        self._release_pending = False
        self._overdue = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def answering(self) -> AsyncIterator[None]:
        """Counts one request (or Socket Mode envelope) until its answer is out."""
        self._answering += 1
        try:
            yield
        finally:
            self._answering -= 1
            self._release_soon()

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
        """Wrap ``listener`` (Bolt still sees its parameters through ``__wrapped__``): it
        runs in a task of its own, and the wrapper returns to Bolt as soon as it acks,
        as soon as it ends, or after ``ACK_WAIT`` seconds, as Bolt's own runner would give
        up. A listener that takes no ``ack`` (an event, which Bolt acks itself once the
        wrapper returns) is left to run at once. A failure before the ack is Bolt's to
        answer and log; one after it is logged here, by kind only, as its message could
        carry what someone typed."""

        @functools.wraps(listener)
        async def tracked(*args: Any, **kwargs: Any) -> None:
            # True once acked, False once the listener ended or ACK_WAIT passed.
            acked: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            if "ack" in kwargs:
                kwargs["ack"] = self._ack_then_give_way(kwargs["ack"], acked)
            else:
                acked.set_result(True)
            work = asyncio.create_task(listener(*args, **kwargs))
            work.add_done_callback(lambda _: _settle(acked, False))
            self._tasks.add(work)
            raised_to_bolt = False

            def finished(work: asyncio.Task[None]) -> None:
                self._tasks.discard(work)
                if raised_to_bolt or work.cancelled() or (error := work.exception()) is None:
                    return
                name, kind = listener.__name__, type(error).__name__
                log.error("listener_failed listener=%s kind=%s", name, kind)

            try:
                if not await _settled_within(acked, ACK_WAIT) and work.done():
                    raised_to_bolt = True
                    work.result()  # Bolt answers a failure before the ack, and logs it
            finally:
                work.add_done_callback(finished)  # after the above: it knows who reported

        return tracked  # type: ignore[return-value]

    def _ack_then_give_way(
        self, ack: Callable[..., Awaitable[Any]], acked: asyncio.Future[bool]
    ) -> Callable[..., Awaitable[Any]]:
        async def ack_then_give_way(*args: Any, **kwargs: Any) -> Any:
            result = await ack(*args, **kwargs)
            _acked.set(True)
            _settle(acked, True)  # the wrapper returns, and Bolt sends the answer
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
        turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()  # True: released
        self._waiting.append(turn)
        self._release_soon()
        try:
            if not await _settled_within(turn, HOLD_LIMIT):
                # Held long enough: go on anyway, but one per turn.
                self._leave(turn)
                async with self._overdue:
                    await asyncio.sleep(0)
        finally:
            self._leave(turn)  # stopped while waiting
            self._release_soon()

    def _leave(self, turn: asyncio.Future[bool]) -> None:
        if turn in self._waiting:
            self._waiting.remove(turn)

    def _release_soon(self) -> None:
        """Let the first listener in line go on once ``QUIET_TURNS`` turns of the loop have
        passed (each reads the sockets), if no answer is pending then."""
        if not self._release_pending:
            self._release_pending = True
            self._count_down(QUIET_TURNS)

    def _count_down(self, turns: int) -> None:
        if turns:
            asyncio.get_running_loop().call_soon(self._count_down, turns - 1)
            return
        self._release_pending = False
        while self._answering == 0 and self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():  # not one overdue or cancelled, on its way out
                turn.set_result(True)
                return

    @property
    def running(self) -> int:
        """Listeners started and not finished, work after an ack included: how far behind
        its clicks a process is."""
        return len(self._tasks)

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a bound, not a cancel
        """Wait up to ``timeout`` seconds for running listeners; returns how many remain."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        return len(self._tasks)

    async def cut_short(self) -> None:
        """Cancel the listeners still running and wait for them to unwind, so none holds
        a database connection past the engine's end (what they left undone is settled
        at the next start)."""
        remaining = set(self._tasks)
        for task in remaining:
            task.cancel()
        await asyncio.gather(*remaining, return_exceptions=True)


JSON = "application/json"


class AnswerFirstSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, counting each envelope until its ack is sent, so
    listeners hold their work after the ack until a burst's acks are out (as HTTP mode's
    ``InFlight.answer_first`` does for HTTP answers).

    An ack with content (``/exalate status``: some 10 kB of blocks) goes out as the JSON
    Bolt already wrote; Bolt's own handler parses it back and writes it again, which
    cost more than the rest of its way out."""

    def __init__(self, app: AsyncApp, app_token: str, inflight: InFlight) -> None:
        super().__init__(app, app_token)
        self._inflight = inflight

    async def handle(  # type: ignore[override]  # narrowed as in Bolt's own handler
        self, client: SocketModeClient, req: SocketModeRequest
    ) -> None:
        async with self._inflight.answering():
            response = await run_async_bolt_app(self.app, req)
            content_type = response.headers.get("content-type", [""])[0]
            if response.status == 200 and response.body and content_type.startswith(JSON):
                envelope = json.dumps(req.envelope_id)
                await client.send_message(f'{{"envelope_id":{envelope},"payload":{response.body}}}')
            else:
                await send_async_response(client, req, response, time.time())
