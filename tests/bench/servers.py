"""The fake Slack and the Exalate simulator in a process of their own, for benchmarks.

    python -m tests.bench.servers SLACK_PORT SIMULATOR_PORT

Prints ``ready`` once both listen on 127.0.0.1, then serves until killed. Keeping them
out of the bot's and the load generator's processes keeps their work out of both
measurements.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from bot.sandbox.exalate_simulator import Simulator, serve
from bot.sandbox.slack_emulator import FakeSlack
from tests.bench.common import APPROVAL_CHANNEL, APPROVER, REQUESTER


async def main(slack_port: int, simulator_port: int) -> None:
    """Serve both until the process is killed."""
    fake = FakeSlack(users={REQUESTER, APPROVER}, channels={APPROVAL_CHANNEL})
    await fake.start(slack_port)
    runner: web.AppRunner = await serve(Simulator(), "127.0.0.1", simulator_port)
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await fake.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
