"""Status and App Home at scale: server time with 10,000 stored requests; with
``--sites N``, N Exalate nodes and the poll that watches their invitations.

    python -m tests.bench.bench_status              # one site, from the flat variables
    python -m tests.bench.bench_status --sites 3    # three sites in exalate-bot.toml

Seeds an SQLite database with requests in every state, starts the bot's runtime on it in
this process, and times what a listener does before answering: ``/exalate status``,
``status mine`` and the App Home view for an approver and for a requester, each
rendered and serialised as Slack would receive it. Prints p50/p99 in ms.

One site (the default): 10,000 requests (3,000 awaiting approval, 3,000 awaiting the
partner, the rest settled), one simulator, the flat settings (``JIRA_URL``, …).

``--sites N`` (N > 1): each site has 1,000 requests in the same proportions, 300 of them
invitations awaiting the partner, and a simulator of its own on loopback holding their
PENDING connections (and the ACTIVE ones of its accepted requests), which accepts only
that site's token. The sites are described in an ``exalate-bot.toml`` written to a
temporary directory; their tokens are in this process's environment. Besides the cases
above it times ``status site=<name>`` for each site, and then runs the life cycle's
``tick`` a few times: the wall time of each, and how many times each site's simulator
was asked for its connection list during it (once a tick, however many are pending).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from bot.approvals.model import DEFAULT_SITE
from bot.config import Settings, load_settings
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
INVITED_PER_SITE = 300  # with --sites: each site's invitations awaiting the partner
TICKS = 5  # life-cycle ticks timed with --sites
RUNS = 200
NOW = datetime.now(UTC)
CONNECTIONS_PATH = "/rest/issuehub/4.0/connections"


@dataclass(frozen=True)
class SeededSite:
    """One site's share of the seeded rows, and its simulated Jira (with ``--sites``)."""

    name: str
    local_short_name: str
    mix: list[tuple[str, int]]
    simulator: Simulator | None = None
    """Holds the connections of the site's invited and active requests, when given."""

    @property
    def rows(self) -> int:
        return sum(n for _status, n in self.mix)


def per_site_mix() -> list[tuple[str, int]]:
    """Today's proportions, scaled to ``INVITED_PER_SITE`` invitations."""
    invited = dict(MIX)["invited"]
    return [(status, n * INVITED_PER_SITE // invited) for status, n in MIX]


async def seed(url: str, sites: list[SeededSite]) -> None:
    """The sites' requests from 200 people, the requester among them. Row ``i`` of site
    ``k`` is number ``n = i * len(sites) + k``, ``n`` minutes old, so the sites' rows
    interleave in time; with one site that is the 10,000 rows of the default run."""
    engine = make_engine(url)
    await upgrade_schema(engine)
    rows: list[dict[str, Any]] = []
    for k, site in enumerate(sites):
        statuses = itertools.chain.from_iterable(itertools.repeat(s, n) for s, n in site.mix)
        for i, status in enumerate(statuses):
            n = i * len(sites) + k
            rows.append(row(site, n, status))
    async with engine.begin() as connection:
        await connection.execute(sa.insert(RequestRow), rows)
    await engine.dispose()


def row(site: SeededSite, n: int, status: str) -> dict[str, Any]:
    """Request number ``n`` of ``site``, in ``status``; its connection goes into the
    site's simulator when it has one (PENDING while invited, ACTIVE once accepted)."""
    name = f"{site.local_short_name}_to_p{n}"
    at = NOW - timedelta(minutes=n)
    connection_id = None
    if site.simulator is not None and status in ("invited", "active"):
        made = site.simulator.create_in_console(
            name, status="PENDING" if status == "invited" else "ACTIVE", code=f"code-{n}"
        )
        connection_id = str(made)
    return {
        "site": site.name,
        "status": status,
        "version": 1,
        "requester": REQUESTER if n % 200 == 0 else f"U{n % 200:06d}",
        "local_short_name": site.local_short_name,
        "remote_short_name": f"p{n}",
        "connection_name": name,
        "open_name": name if status in ("pending_approval", "invited") else None,
        "description": "seeded",
        "project_key": "SUP",
        "created_at": at,
        "updated_at": at,
        "card_ref": f"{APPROVAL_CHANNEL}:{n}",
        "exalate_status": "PENDING",
        "exalate_connection_id": connection_id,
        "invitation_code": b"sealed" if status == "invited" else None,
    }


async def timed(call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        answer = await call()
        if not isinstance(answer, str):  # a status answer comes serialised already
            json.dumps(answer)  # what goes over the wire to Slack
        samples.append(time.perf_counter() - started)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": cuts[49] * 1000, "p99": cuts[98] * 1000, "max": max(samples) * 1000}


def sites_file(folder: Path, sites: list[SeededSite], servers: list[TestServer]) -> Path:
    """``exalate-bot.toml`` for the sites, each signing in with a token of its own, held
    in this process's environment under the name the file gives."""
    tables = []
    for site, server in zip(sites, servers, strict=True):
        assert site.simulator is not None
        assert site.simulator.token is not None
        variable = f"BENCH_JIRA_TOKEN_{site.name.upper()}"
        os.environ[variable] = site.simulator.token
        url = str(server.make_url("")).rstrip("/")
        tables.append(
            f"[sites.{site.name}]\n"
            f'jira_url = "{url}"\n'
            f'token_env = "{variable}"\n'
            f'local_short_name = "{site.local_short_name}"\n'
        )
    path = folder / "exalate-bot.toml"
    path.write_text("\n".join(tables), encoding="utf-8")
    path.chmod(0o600)
    return path


async def time_answers(runtime: Runtime, sites: list[SeededSite], *, fresh: bool) -> None:
    """Print p50/p99 (and with several sites the max, the first ask's database read
    included) of each answer; with ``fresh`` also of status read afresh every time."""
    listings = runtime.services.listings
    several = len(sites) > 1

    def after_a_write(call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        async def asked() -> Any:
            # As after any write of this process: the shared read is not handed out.
            runtime.repository.writes += 1
            return await call()

        return asked

    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        # a fresh SharedStatus each: every ask rendered, as when asks come apart
        "/exalate status": lambda: status_answer(listings, SharedStatus(), "", REQUESTER),
    }

    def status_of(site: str) -> Callable[[], Awaitable[Any]]:
        return lambda: status_answer(listings, SharedStatus(), "", REQUESTER, site=site)

    if several:
        for site in sites:
            cases[f"/exalate status site={site.name}"] = status_of(site.name)
    cases |= {
        "/exalate status mine": lambda: status_answer(listings, SharedStatus(), "mine", REQUESTER),
        "App Home (approver)": lambda: dashboard(listings, APPROVER),
        "App Home (requester)": lambda: dashboard(listings, REQUESTER),
    }
    if fresh:
        statuses = [label for label in cases if label.startswith("/exalate status")]
        cases |= {
            f"{label} (read)": after_a_write(cases[label])
            for label in statuses
            if not label.endswith("mine")  # read every time anyway
        }
    width = max(22, *(len(label) for label in cases))
    total = sum(site.rows for site in sites)
    if several:
        print(
            f"{len(sites)} sites with {sites[0].rows} stored requests each ({total}), "
            f"{INVITED_PER_SITE} awaiting the partner on each; {RUNS} runs each; "
            "server time in ms"
        )
    else:
        print(f"{total} stored requests; {RUNS} runs each; server time in ms")
    for label, call in cases.items():
        figures = await timed(call)
        line = f"{label:{width}} p50 {figures['p50']:7.1f}   p99 {figures['p99']:7.1f}"
        print(line + (f"   max {figures['max']:7.1f}" if several else ""))


async def time_ticks(runtime: Runtime, sites: list[SeededSite]) -> bool:
    """Run the life cycle's tick ``TICKS`` times; print each one's wall time and each
    site's connection-list calls per tick. Whether every site was asked once a tick."""
    for served in runtime.services.sites:  # the warm-up's lists are in: they are not a tick's
        await served.connections.get(wait=10)
    walls: list[float] = []
    writes: list[int] = []
    calls: dict[str, list[int]] = {site.name: [] for site in sites}
    for _ in range(TICKS):
        before = {site.name: list_calls(site) for site in sites}
        written = runtime.repository.writes
        started = time.perf_counter()
        await runtime.jobs.tick()
        walls.append((time.perf_counter() - started) * 1000)
        writes.append(runtime.repository.writes - written)
        for site in sites:
            calls[site.name].append(list_calls(site) - before[site.name])
    print(
        f"poll: {TICKS} ticks, wall time per tick in ms: "
        + " ".join(f"{wall:.1f}" for wall in walls)
        + f"   (median {statistics.median(walls):.1f})"
    )
    print("  database write transactions per tick: " + " ".join(map(str, writes)))
    health = {served.name: served.health.reachable for served in runtime.services.sites}
    for site in sites:
        counts = " ".join(map(str, calls[site.name]))
        print(
            f"  site {site.name:10} GET {CONNECTIONS_PATH} per tick: {counts}   "
            f"({INVITED_PER_SITE} pending; reachable {health[site.name]})"
        )
    return all(count == 1 for counts in calls.values() for count in counts)


def list_calls(site: SeededSite) -> int:
    assert site.simulator is not None
    return sum(
        1 for r in site.simulator.requests if r.method == "GET" and r.path == CONNECTIONS_PATH
    )


async def run(site_count: int, *, fresh: bool) -> bool:
    if site_count == 1:
        total = sum(n for _status, n in MIX)
        assert total == TOTAL
        sites = [SeededSite(DEFAULT_SITE, "acme", MIX)]
    else:
        sites = [
            SeededSite(
                f"site{k}",
                f"acme{k}",
                per_site_mix(),
                Simulator(token=f"bench-token-site{k}"),
            )
            for k in range(1, site_count + 1)
        ]
    people = {REQUESTER, APPROVER} | {f"U{n:06d}" for n in range(200)}
    simulators = [site.simulator or Simulator() for site in sites]
    servers = [TestServer(simulator.app, host="127.0.0.1") for simulator in simulators]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        await seed(url, sites)
        async with FakeSlack(users=people, channels={APPROVAL_CHANNEL}) as slack:
            for server in servers:
                await server.start_server()
            try:
                common: dict[str, Any] = {
                    "slack_bot_token": "xoxb-bench",
                    "slack_signing_secret": "s",
                    "slack_api_url": slack.api_url,
                    "database_url": url,
                    "exalate_approval_channel": APPROVAL_CHANNEL,
                    "exalate_approvers": APPROVER,
                }
                settings: Settings
                if site_count == 1:
                    settings = load_settings(
                        jira_url=str(servers[0].make_url("")).rstrip("/"),
                        jira_token="test-jira-token",
                        **common,
                    )
                else:
                    path = sites_file(Path(folder), sites, servers)
                    settings = load_settings(exalate_config=str(path), **common)
                runtime = await Runtime.start(settings, http_mode=True)
                try:
                    await time_answers(runtime, sites, fresh=fresh)
                    once_a_tick = site_count == 1 or await time_ticks(runtime, sites)
                finally:
                    await runtime.close()
            finally:
                for server in servers:
                    await server.close()
    return once_a_tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sites",
        type=int,
        default=1,
        help="Exalate nodes, each with 300 invitations awaiting the partner, in a sites "
        "file; the poll is timed too (default 1: 10,000 rows, one site, no file)",
    )
    parser.add_argument(
        "--fresh-reads",
        action="store_true",
        help="also time /exalate status reading the database for every ask, as after any "
        "write (the '(read)' lines); otherwise asks share one read, as within 2 s",
    )
    arguments = parser.parse_args()
    if arguments.sites < 1:
        parser.error("--sites must be at least 1")
    if not asyncio.run(run(arguments.sites, fresh=arguments.fresh_reads)):
        raise SystemExit("a site's connection list was not read exactly once a tick")


if __name__ == "__main__":
    main()
