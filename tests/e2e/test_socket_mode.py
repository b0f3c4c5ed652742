"""Socket Mode: the same listeners, reached over a WebSocket instead of HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.config import Settings
from bot.runtime.answer_first import AnswerFirstSocketModeHandler
from bot.runtime.app import Runtime
from bot.runtime.serve import (
    connect_socket_mode,
    serve_socket_mode,
)
from bot.sandbox.slack_emulator import FakeSlack
from tests.e2e.harness import ALICE
from tests.loop_turns import turns


async def test_slash_command_round_trip(settings: Settings, slack: FakeSlack) -> None:
    """apps.connections.open with the app token, an envelope in, the ack payload out."""
    runtime = await Runtime.start(settings, http_mode=False)
    handler = await connect_socket_mode(runtime)
    try:
        ack = await slack.push_envelope(
            "slash_commands",
            {
                "command": "/exalate",
                "text": "status",
                "user_id": ALICE,
                "team_id": "T1",
                "channel_id": "C0GENERAL",
                "trigger_id": "t",
                "api_app_id": "A1",
                "response_url": slack.response_url("socket"),
            },
        )
        readiness = await runtime.readiness()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
        await runtime.close()
    assert readiness["socket_mode_connected"] is True
    # Envelopes are counted until acked, so listeners hold their work for a burst's acks.
    assert isinstance(handler, AnswerFirstSocketModeHandler)
    assert "Nothing is pending" in ack["payload"]["text"]
    opened = slack.calls_to("apps.connections.open")
    assert opened
    assert opened[0].token == "xapp-e2e-app-token"


async def test_an_empty_ack_then_the_modal(settings: Settings, slack: FakeSlack) -> None:
    """``/exalate connect`` is acked with nothing, then its form opens with the
    envelope's trigger_id."""
    runtime = await Runtime.start(settings, http_mode=False)
    handler = await connect_socket_mode(runtime)
    trigger = slack.trigger_id()
    try:
        ack = await slack.push_envelope(
            "slash_commands",
            {
                "command": "/exalate",
                "text": "connect",
                "user_id": ALICE,
                "team_id": "T1",
                "channel_id": "C0GENERAL",
                "trigger_id": trigger,
                "api_app_id": "A1",
                "response_url": slack.response_url("socket"),
            },
        )
        opened = await slack.wait_for("views.open")
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
        await runtime.close()
    assert ack == {"envelope_id": ack["envelope_id"]}
    assert opened.args["trigger_id"] == trigger


async def test_serve_socket_mode_with_probes_and_sigterm(
    settings: Settings, slack: FakeSlack, signals_installed: asyncio.Event
) -> None:
    """The production path: connect, answer /healthz on --health-port, stop on SIGTERM."""
    port = _free_port()
    serving = asyncio.create_task(serve_socket_mode(settings, "127.0.0.1", port))
    await asyncio.wait_for(signals_installed.wait(), 10)  # connected and probes listening
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            health = await response.json()
        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
            readiness = await response.json()
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            metrics = await response.text()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(serving, timeout=10)
    assert readiness["socket_mode_connected"] is True
    assert health["ok"] is True
    assert "exalate_bot_approvals_total 0" in metrics


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_sigterm_ends_socket_mode_in_seconds_on_a_plain_websocket_server(
    settings: Settings, slack: FakeSlack, signals_installed: asyncio.Event
) -> None:
    """Against a plain aiohttp WebSocket server that does not answer the close frame
    (busy, or the network between is gone), not only the emulator: with nothing in
    flight, SIGTERM ends serving in under 3 s (Docker waits 10 s before killing)."""
    connected, released = asyncio.Event(), asyncio.Event()

    async def link(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1})
        connected.set()
        await released.wait()  # reads nothing: the client's close frame is never answered
        return ws

    plain = web.Application()
    plain.router.add_get("/link", link)
    async with TestServer(plain, host="127.0.0.1") as server:
        url = str(server.make_url("/link")).replace("http://", "ws://", 1)
        slack.answer("apps.connections.open", {"ok": True, "url": url})
        serving = asyncio.create_task(serve_socket_mode(settings, "127.0.0.1", None))
        await asyncio.wait_for(connected.wait(), 5)
        await asyncio.wait_for(signals_installed.wait(), 5)
        started = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, 15)
        stopped_after = time.monotonic() - started
        released.set()
    assert stopped_after < 3.0


async def test_the_ack_is_answered_as_it_is_given(settings: Settings) -> None:
    """The bot's app answers a command the moment its listener acks: within a few turns
    of an idle event loop, where Bolt's default runner would sleep 10 ms before it first
    looks for the ack."""
    runtime = await Runtime.start(settings, http_mode=False)
    help_command = {
        "command": "/exalate",
        "text": "help",
        "user_id": ALICE,
        "team_id": "T1",
        "channel_id": "C0GENERAL",
        "api_app_id": "A1",
    }
    try:
        await runtime.app.async_dispatch(AsyncBoltRequest(body=help_command, mode="socket_mode"))
        answer = asyncio.create_task(
            runtime.app.async_dispatch(AsyncBoltRequest(body=help_command, mode="socket_mode"))
        )
        await turns(10)  # no timer can fire in ten turns of an idle loop
        assert answer.done()
        assert "Usage" in answer.result().body
    finally:
        await runtime.close()
