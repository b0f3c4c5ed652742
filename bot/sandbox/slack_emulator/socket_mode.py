"""The Socket Mode side of the emulator: the WebSocket a Bolt client connects to, the
envelopes sent down it, and the acks that come back, timed as Slack times them."""

# ruff: noqa: ASYNC109  (see server.py: waiting helpers take timeout= on purpose)

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import WSMsgType, web

from bot.sandbox.slack_emulator.block_kit import ack_problems


class SocketModeSide:
    """Mixed into ``FakeSlack``, which creates the state below in its ``__init__``."""

    ack_deadline: float
    acks: list[dict[str, Any]]
    """Every Socket Mode message with an ``envelope_id`` the client sent, in order."""
    connection_count: int
    """How many WebSocket connections have been opened so far (reconnects add one)."""
    _changed: asyncio.Condition
    _sockets: list[web.WebSocketResponse]
    _pending_acks: dict[str, asyncio.Future[tuple[dict[str, Any], float]]]
    """Per envelope awaiting its ack: the ack and when it was read (``time.monotonic``)."""
    _envelope_ids: itertools.count[int]

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """Wait until a Socket Mode client holds an open WebSocket."""
        try:
            async with asyncio.timeout(timeout):
                await self._newest_socket()
        except TimeoutError:
            raise AssertionError(f"no Socket Mode client connected within {timeout}s") from None

    async def push_envelope(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = True,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Deliver a payload over Socket Mode and return the client's ack message.

        ``envelope_type`` is ``"slash_commands"``, ``"interactive"`` or
        ``"events_api"``. The ack is ``{"envelope_id": ..., "payload": ...}`` with
        ``payload`` only when the listener acked with content. An ack later than
        `ACK_DEADLINE` after the envelope was sent, or whose payload Slack would
        refuse, fails with an ``AssertionError``, as does no ack within ``timeout``
        (Bolt sends none when no listener acks) or having no client connected.
        An ``events_api`` envelope carries ``retry_attempt`` and ``retry_reason``
        (see `redeliver_event`).
        """
        message, elapsed = await self.push_timed(
            envelope_type,
            payload,
            accepts_response_payload=accepts_response_payload,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            timeout=timeout,
        )
        self.check_ack(elapsed, message.get("payload") or {})
        return message

    async def redeliver_event(
        self,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 1,
        retry_reason: str = "http_timeout",
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Deliver an Events API payload again, as Slack does when an earlier delivery
        was not acknowledged in time: the same payload (same ``event_id``), with
        ``retry_attempt`` and ``retry_reason`` set. Bolt turns them into the
        ``x-slack-retry-num`` and ``x-slack-retry-reason`` headers an HTTP delivery
        carries (`retry_headers` builds those). Returns the ack, as `push_envelope`."""
        if retry_attempt < 1:
            raise ValueError("a redelivery is attempt 1 or later")
        return await self.push_envelope(
            "events_api",
            payload,
            accepts_response_payload=False,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            timeout=timeout,
        )

    async def push_timed(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = True,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> tuple[dict[str, Any], float]:
        """Deliver a payload and return the ack with the seconds it took, judging
        neither (benchmarks time acks past the deadline too)."""
        envelope_id = f"env-{next(self._envelope_ids)}"
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if envelope_type == "events_api":
            # Slack always sends these on events; Bolt turns them into x-slack-retry-* headers.
            envelope |= {"retry_attempt": retry_attempt, "retry_reason": retry_reason}
        ack: asyncio.Future[tuple[dict[str, Any], float]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending_acks[envelope_id] = ack
        try:
            async with asyncio.timeout(timeout):
                ws = await self._newest_socket()
                await ws.send_json(envelope)
                sent = time.monotonic()
                message, received = await ack
        except TimeoutError:
            raise AssertionError(
                f"no ack for {envelope_type} envelope {envelope_id} within {timeout}s; "
                f"connected: {bool(self._live_sockets())}, acks so far: {len(self.acks)}"
            ) from None
        finally:
            self._pending_acks.pop(envelope_id, None)
        return message, received - sent

    def check_ack(
        self, elapsed: float, answer: Mapping[str, Any], view: Mapping[str, Any] | None = None
    ) -> None:
        """Fail where Slack would show the person an error: an ack later than the
        deadline, or one Slack refuses (for a submission of ``view``, errors must name
        its input blocks)."""
        assert elapsed <= self.ack_deadline, (
            f"acked after {elapsed:.2f}s; Slack shows an error after {self.ack_deadline:g}s"
        )
        problems = ack_problems(answer, view)
        assert not problems, f"Slack would refuse this ack: {problems}"

    async def request_reconnect(
        self, reason: str = "refresh_requested", *, timeout: float = 5.0
    ) -> None:
        """Send Slack's ``disconnect`` message and wait for the client to connect again.

        Slack does this routinely (e.g. every few hours, ``refresh_requested``), so
        a bot must survive it without losing payloads.
        """
        await self.wait_connected(timeout)
        ws = await self._newest_socket()
        before = self.connection_count
        await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}})
        try:
            async with self._changed, asyncio.timeout(timeout):
                await self._changed.wait_for(
                    lambda: self.connection_count > before and bool(self._live_sockets())
                )
        except TimeoutError:
            raise AssertionError(f"client did not reconnect within {timeout}s") from None

    def _live_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self._sockets if not ws.closed]

    async def _newest_socket(self) -> web.WebSocketResponse:
        """The most recently opened live WebSocket, waiting (unbounded) for one."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._live_sockets()))
        return self._live_sockets()[-1]

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        """The Socket Mode WebSocket: hello, then envelopes out and acks in."""
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        hello = {
            "type": "hello",
            "num_connections": len(self._live_sockets()) + 1,
            "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A1"},
        }
        await ws.send_json(hello)
        # Registered only after hello, so no envelope can overtake it.
        async with self._changed:
            self._sockets.append(ws)
            self.connection_count += 1
            self._changed.notify_all()
        ack_at_once = _quick_acks(request)
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self._on_client_message(message.data)
                    ack_at_once()
        finally:
            async with self._changed:
                self._sockets.remove(ws)
                self._changed.notify_all()
        return ws

    def _on_client_message(self, text: str) -> None:
        # Timed as it is read, not as its waiter resumes: acks read in one step of the
        # loop are all parsed before any waiter resumes, and each would be timed late
        # for the parsing of the ones read after it (some 0.1 ms each for 10 kB).
        received = time.monotonic()
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("envelope_id"), str):
            return
        self.acks.append(message)
        future = self._pending_acks.get(message["envelope_id"])
        if future is not None and not future.done():
            future.set_result((message, received))


def _quick_acks(request: web.Request) -> Callable[[], None]:
    """What to call after each message read from the client, so that this side's
    kernel acknowledges it at once, not after its delayed-ACK timer (Linux's
    ``TCP_QUICKACK``, which lasts a few segments, hence after each message).

    Measured on loopback: a burst of fifty 8-10 kB acks (``/exalate status``) now and
    then stopped after some 80 kB. The client's kernel held the other 300 kB unsent,
    with nothing in flight and neither process busy, until this side's next ACK, 40-60
    ms later (a delayed one); a bare app's acks of a few bytes never met it.
    How a real Slack server acknowledges is not known here, and the benchmark compares
    apps, so the emulator acknowledges at once."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None:
        return lambda: None
    return functools.partial(sock.setsockopt, socket.IPPROTO_TCP, option, 1)
