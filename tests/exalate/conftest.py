"""The simulator on a loopback port and an HTTP session, shared by the client and
simulator tests, and a stand-in for the client's sleeps between retries.

Each test module names the token its simulator accepts with a ``token`` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.sandbox.exalate_simulator import Simulator


@pytest.fixture(name="sim")
def _sim(token: str) -> Simulator:
    return Simulator(token=token)


@pytest.fixture(name="server")
async def _server(sim: Simulator) -> AsyncIterator[TestServer]:
    server = TestServer(sim.app, host="127.0.0.1")
    async with server:
        yield server


@pytest.fixture(name="session")
async def _session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Sleeps:
    """Stands in for asyncio.sleep between retries: records the waits, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
