"""Sync health's cost to the poll: the life cycle's tick on the replica that holds the
lease, with many connections on one node.

    python -m tests.bench.bench_health --connections 500 --ticks 60
    python -m tests.bench.bench_health --connections 500 --ticks 60 --alerts

Starts a simulator holding ``--connections`` ACTIVE connections (made in the console,
as a node's other connections are), the Slack emulator, and the bot's runtime in this
process on a new SQLite database, its one site in an ``exalate-bot.toml`` (with an
``[alerts]`` table when ``--alerts``). Then ticks ``--ticks`` times, the clock half a
minute further each time; halfway, a tenth of the connections go to Error (so incidents
open, one card is posted and later ticks hold them). Prints the wall time of the ticks
(p50, p90, max in ms) and the whole run's. Uses only what every version of the bot has
(the runtime, its tick, the simulator), so a checkout of an older commit runs it too:
``PYTHONPATH=<checkout> python <this file>``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestServer

from bot.config import load_settings
from bot.runtime.app import Runtime
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import FakeSlack
from tests.bench.common import APPROVAL_CHANNEL, APPROVER

TOKEN = "bench-jira-token"
ALERTS = "C0EXALATEOPS"
SITE = """
[sites.eu]
jira_url = "{jira}"
token_env = "BENCH_JIRA_TOKEN"
local_short_name = "acme-eu"
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def ticks(connections: int, count: int, alerts: bool) -> list[float]:
    """The wall time of each of ``count`` ticks, in seconds."""
    simulator = Simulator(token=TOKEN)
    names = [f"acme-to-partner-{n:04d}" for n in range(connections)]
    for name in names:
        simulator.create_in_console(name, status="ACTIVE")
    os.environ["BENCH_JIRA_TOKEN"] = TOKEN
    clock, spent = Clock(), []
    with tempfile.TemporaryDirectory() as folder:
        async with (
            TestServer(simulator.app, host="127.0.0.1") as jira,
            FakeSlack(users=(APPROVER,), channels={APPROVAL_CHANNEL, ALERTS}) as slack,
        ):
            path = Path(folder) / "exalate-bot.toml"
            text = SITE.format(jira=str(jira.make_url("")).rstrip("/"))
            path.write_text(text + (f'\n[alerts]\nchannel = "{ALERTS}"\n' if alerts else ""))
            path.chmod(0o600)
            settings = load_settings(
                slack_bot_token="xoxb-bench",
                slack_signing_secret="bench-signing-secret",
                slack_api_url=slack.api_url,
                exalate_config=str(path),
                database_url=f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
                exalate_approval_channel=APPROVAL_CHANNEL,
                exalate_approvers=APPROVER,
            )
            runtime = await Runtime.start(settings, http_mode=True, clock=clock)
            try:
                for n in range(count):
                    if n == count // 2:
                        for name in names[::10]:
                            simulator.set_status(name, "ERROR")
                    clock.now += timedelta(seconds=30)
                    started = time.perf_counter()
                    await runtime.jobs.tick()
                    await runtime.services.outbox.send_due()
                    spent.append(time.perf_counter() - started)
            finally:
                await runtime.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--alerts", action="store_true", help="with an [alerts] table")
    arguments = parser.parse_args()
    started = time.perf_counter()
    spent = asyncio.run(ticks(arguments.connections, arguments.ticks, arguments.alerts))
    whole = time.perf_counter() - started
    ms = sorted(s * 1000 for s in spent)
    print(
        f"connections={arguments.connections} ticks={arguments.ticks} alerts={arguments.alerts}"
        f" tick_p50_ms={statistics.median(ms):.1f}"
        f" tick_p90_ms={ms[int(len(ms) * 0.9) - 1]:.1f} tick_max_ms={ms[-1]:.1f}"
        f" whole_s={whole:.2f}"
    )


if __name__ == "__main__":
    main()
