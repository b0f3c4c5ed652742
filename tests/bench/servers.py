"""The fake Slack's Web API and the Exalate simulator in a process of their own.

    python -m tests.bench.servers SLACK_PORT SIMULATOR_PORT CONTROL_PORT [SOCKET_MODE_URL]

Prints ``ready`` once all listen on 127.0.0.1, then serves until killed. Keeping them
out of the bot's and the load generator's processes keeps their work out of both
measurements. ``SOCKET_MODE_URL`` is where ``apps.connections.open`` sends a Socket Mode
client: the benchmark's own emulator, which sends the envelopes and times the acks, so
the Web API calls a burst sets off (50 modals to check, say) do not delay the timing.
The control port's ``POST /handed-out?count=N`` issues N trigger_ids and response URLs:
the emulator honours only those it issued, as Slack does, so payloads built without
them would measure the bot's error path.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from aiohttp import web

from bot.sandbox.exalate_simulator import Simulator, serve
from bot.sandbox.slack_emulator import FakeSlack
from tests.bench.common import APPROVAL_CHANNEL, APPROVER, REQUESTER


def control(fake: FakeSlack) -> web.Application:
    """What the benchmark's process asks of the fake Slack."""
    names = itertools.count()

    async def handed_out(request: web.Request) -> web.Response:
        count = int(request.query["count"])
        pairs = [(fake.trigger_id(), fake.response_url(f"b{next(names)}")) for _ in range(count)]
        return web.json_response({"handed_out": pairs})

    app = web.Application()
    app.router.add_post("/handed-out", handed_out)
    return app


async def main(ports: list[int], socket_mode_elsewhere: str | None) -> None:
    """Serve all until the process is killed."""
    slack_port, simulator_port, control_port = ports
    fake = FakeSlack(
        users={REQUESTER, APPROVER},
        channels={APPROVAL_CHANNEL},
        socket_mode_elsewhere=socket_mode_elsewhere,
    )
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
    ports, socket_mode_url = sys.argv[1:4], sys.argv[4] if len(sys.argv) > 4 else None
    asyncio.run(main([int(port) for port in ports], socket_mode_url))
