"""The simulator on a loopback port, shared by the client and simulator tests.

Each test module names the token its simulator accepts with a ``token`` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

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
