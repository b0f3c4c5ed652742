"""Status and App Home at scale: server time with 10,000 stored requests.

    python -m tests.bench.bench_status

Seeds an SQLite database with 10,000 requests in every state (3,000 awaiting approval,
3,000 awaiting the partner, the rest settled), starts the bot's runtime on it in this
process, and times what a listener does before answering: ``/exalate status``,
``status mine`` and the App Home view for an approver and for a requester, each
rendered and serialised as Slack would receive it. Prints p50/p99 in ms.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from bot.config import load_settings
from bot.runtime.app import Runtime
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import FakeSlack
from handlers.commands import status_answer
from handlers.home import dashboard
from handlers.shared_status import SharedStatus
from storage import make_engine, upgrade_schema
from storage.tables import RequestRow
from tests.bench.common import APPROVAL_CHANNEL, APPROVER, REQUESTER

TOTAL = 10_000
MIX = [
    ("pending_approval", 3000),
    ("invited", 3000),
    ("active", 2000),
    ("rejected", 1000),
    ("cancelled", 1000),
]
RUNS = 200
NOW = datetime.now(UTC)


async def seed(url: str) -> None:
    """10,000 requests from 200 people, the requester among them."""
    engine = make_engine(url)
    await upgrade_schema(engine)
    statuses = itertools.chain.from_iterable(itertools.repeat(s, n) for s, n in MIX)
    rows: list[dict[str, Any]] = []
    for n, status in enumerate(statuses):
        name = f"acme_to_p{n}"
        at = NOW - timedelta(minutes=n)
        rows.append(
            {
                "status": status,
                "version": 1,
                "requester": REQUESTER if n % 200 == 0 else f"U{n % 200:06d}",
                "local_short_name": "acme",
                "remote_short_name": f"p{n}",
                "connection_name": name,
                "open_name": name if status in ("pending_approval", "invited") else None,
                "description": "seeded",
                "project_key": "SUP",
                "created_at": at,
                "updated_at": at,
                "card_ref": f"{APPROVAL_CHANNEL}:{n}",
                "exalate_status": "PENDING",
                "invitation_code": b"sealed" if status == "invited" else None,
            }
        )
    async with engine.begin() as connection:
        await connection.execute(sa.insert(RequestRow), rows)
    await engine.dispose()


async def timed(call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        answer = await call()
        if not isinstance(answer, str):  # a status answer comes serialised already
            json.dumps(answer)  # what goes over the wire to Slack
        samples.append(time.perf_counter() - started)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": cuts[49] * 1000, "p99": cuts[98] * 1000}


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        await seed(url)
        simulator = Simulator()
        people = {REQUESTER, APPROVER} | {f"U{n:06d}" for n in range(200)}
        async with (
            FakeSlack(users=people, channels={APPROVAL_CHANNEL}) as slack,
            TestServer(simulator.app, host="127.0.0.1") as jira,
        ):
            settings = load_settings(
                slack_bot_token="xoxb-bench",
                slack_signing_secret="s",
                slack_api_url=slack.api_url,
                jira_url=str(jira.make_url("")).rstrip("/"),
                jira_token="t",
                database_url=url,
                exalate_approval_channel=APPROVAL_CHANNEL,
                exalate_approvers=APPROVER,
            )
            runtime = await Runtime.start(settings, http_mode=True)
            service = runtime.service
            cases = {
                # a fresh SharedStatus each: every ask rendered, as when asks come apart
                "/exalate status": lambda: status_answer(service, SharedStatus(), "", REQUESTER),
                "/exalate status mine": lambda: status_answer(
                    service, SharedStatus(), "mine", REQUESTER
                ),
                "App Home (approver)": lambda: dashboard(service, APPROVER),
                "App Home (requester)": lambda: dashboard(service, REQUESTER),
            }
            print(f"{TOTAL} stored requests; {RUNS} runs each; server time in ms")
            for label, call in cases.items():
                figures = await timed(call)
                print(f"{label:22} p50 {figures['p50']:7.1f}   p99 {figures['p99']:7.1f}")
            await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
