"""With --health-port, HTTP mode serves the probes and /metrics there only."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Iterator

import aiohttp
import pytest

from bot.app import serve_http
from bot.config import Settings


class Started(logging.Handler):
    """Sets an event once both servers say they listen: no polling for the ports."""

    def __init__(self) -> None:
        super().__init__()
        self.listening = asyncio.Event()
        self._seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        event = record.getMessage().split(" ", 1)[0]
        if event in ("serving_http", "serving_probes"):
            self._seen.add(event)
        if len(self._seen) == 2:
            self.listening.set()


@pytest.fixture(name="started")
def _started() -> Iterator[Started]:
    handler = Started()
    logger = logging.getLogger("bot.app")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_probes_leave_the_public_port(settings: Settings, started: Started) -> None:
    """/healthz, /readyz and /metrics answer on the health port; the public port, where
    Slack's requests arrive, has only /slack/events."""
    public, health = _free_port(), _free_port()
    serving = asyncio.create_task(serve_http(settings, "127.0.0.1", public, health))
    await asyncio.wait_for(started.listening.wait(), 10)
    async with aiohttp.ClientSession() as http:
        for path in ("/healthz", "/readyz", "/metrics"):
            async with http.get(f"http://127.0.0.1:{public}{path}") as response:
                assert response.status == 404, path
            async with http.get(f"http://127.0.0.1:{health}{path}") as response:
                assert response.status in (200, 503), path  # /readyz: Jira not asked yet
        async with http.post(f"http://127.0.0.1:{public}/slack/events", data=b"") as response:
            assert response.status == 401  # Bolt is there, and refuses the unsigned post
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(serving, 10)
