"""With --health-port, HTTP mode serves the probes and /metrics there only."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp

from bot.config import Settings
from bot.runtime.serve import serve_http
from tests.processes import free_port


async def test_probes_leave_the_public_port(
    settings: Settings, signals_installed: asyncio.Event
) -> None:
    """/healthz, /readyz and /metrics answer on the health port; the public port, where
    Slack's requests arrive, has only /slack/events."""
    public, health = free_port(), free_port()
    serving = asyncio.create_task(serve_http(settings, "127.0.0.1", public, health))
    await asyncio.wait_for(signals_installed.wait(), 10)  # both ports listen by then
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
