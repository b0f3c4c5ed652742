"""The fake Slack and the Exalate simulator in a process of their own, for benchmarks.

    python -m tests.bench.servers SLACK_PORT SIMULATOR_PORT CONTROL_PORT

Prints ``ready`` once all listen on 127.0.0.1, then serves until killed. Keeping them
out of the bot's and the load generator's processes keeps their work out of both
measurements. The control port lets the benchmark drive Socket Mode from outside:
``POST /connected`` waits for a client's WebSocket, ``POST /push`` sends envelopes
(``{"type": …, "payloads": […]}``) all at once and answers each ack's time in seconds
(null: no ack within 10 s). ``POST /handed-out?count=N`` issues N trigger_ids and
response URLs: the emulator honours only those it issued, as Slack does, so payloads
built without them would measure the bot's error path.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from typing import Any

from aiohttp import web

from bot.sandbox.exalate_simulator import Simulator, serve
from bot.sandbox.slack_emulator import FakeSlack
from tests.bench.common import APPROVAL_CHANNEL, APPROVER, REQUESTER


def control(fake: FakeSlack) -> web.Application:
    """Socket Mode, steered by the benchmark's process."""

    async def connected(_request: web.Request) -> web.Response:
        await fake.wait_connected(timeout=30)
        return web.json_response({})

    async def push(request: web.Request) -> web.Response:
        body = await request.json()

        async def timed(payload: dict[str, Any]) -> float | None:
            try:
                _ack, seconds = await fake.push_timed(body["type"], payload, timeout=10)
            except AssertionError:  # no ack at all: Bolt gave up after its 3 s
                return None
            return seconds

        seconds = await asyncio.gather(*(timed(payload) for payload in body["payloads"]))
        return web.json_response({"seconds": seconds})

    names = itertools.count()

    async def handed_out(request: web.Request) -> web.Response:
        count = int(request.query["count"])
        pairs = [(fake.trigger_id(), fake.response_url(f"b{next(names)}")) for _ in range(count)]
        return web.json_response({"handed_out": pairs})

    app = web.Application()
    app.router.add_post("/connected", connected)
    app.router.add_post("/handed-out", handed_out)
    app.router.add_post("/push", push)
    return app


async def main(slack_port: int, simulator_port: int, control_port: int) -> None:
    """Serve all until the process is killed."""
    fake = FakeSlack(users={REQUESTER, APPROVER}, channels={APPROVAL_CHANNEL})
    await fake.start(slack_port)
    runner: web.AppRunner = await serve(Simulator(), "127.0.0.1", simulator_port)
    steering = web.AppRunner(control(fake), access_log=None)
    await steering.setup()
    await web.TCPSite(steering, "127.0.0.1", control_port).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await steering.cleanup()
        await runner.cleanup()
        await fake.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
