"""Property test of counting approvals (hypothesis): over random interleavings of
approve, reject and repeated clicks, from eligible and ineligible people, through two
replicas (two engines on one database), the connection is created only with at least N
distinct eligible approvals, exactly once, and never after a rejection.

Runs on SQLite and on PostgreSQL; each example is a request of its own in the same
database, so examples need no cleaning between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.approvals.errors import ApprovalError
from bot.approvals.model import RequestFields, Status
from bot.approvals.routes import Routes, Rule
from bot.approvers import ApproverPolicy
from bot.exalate import BearerToken, ExalateClient
from bot.sandbox.exalate_simulator import Simulator
from bot.service import ConnectionService, Site, Sites, build_services, utc_now
from bot.site_config import SiteConfig
from bot.vault import Vault
from storage import RequestRepository, make_engine, make_sessionmaker, upgrade_schema
from tests.fakes.notifier import RecordingNotifier

REQUESTER = "U0ALICE"  # in the leads' group: never counts for her own request
LEADS = "S0LEADS"
GROUPS = {LEADS: frozenset({"U0ERIN", REQUESTER})}
APPROVERS = ("U0BOB", "U0CAROL", LEADS)
ELIGIBLE = frozenset({"U0BOB", "U0CAROL", "U0ERIN"})
PEOPLE = (*sorted(ELIGIBLE), REQUESTER, "U0MALLORY")


class Groups:
    async def members(self, group_id: str) -> frozenset[str]:
        return GROUPS.get(group_id, frozenset())


@dataclass(frozen=True)
class Click:
    kind: str  # approve | reject
    who: str
    replica: int


CLICKS = st.builds(
    Click,
    st.sampled_from(["approve", "approve", "approve", "reject"]),
    st.sampled_from(PEOPLE),
    st.integers(0, 1),
)
# Batches run one after another; the clicks within one run at once.
BATCHES = st.lists(st.lists(CLICKS, min_size=1, max_size=5), min_size=1, max_size=4)


async def _scenario(url: str, needed: int, batches: list[list[Click]]) -> None:
    rule = Rule(APPROVERS, approvals=needed, channel="C0SUPPORT", route=1)
    simulator = Simulator(token="t")
    engines = [make_engine(url), make_engine(url)]
    await upgrade_schema(engines[0])
    try:
        async with (
            TestServer(simulator.app, host="127.0.0.1") as server,
            aiohttp.ClientSession() as http,
        ):
            base = str(server.make_url(""))
            replicas: list[ConnectionService] = []
            stores = []
            for number, engine in enumerate(engines):
                store = RequestRepository(make_sessionmaker(engine))
                exalate = ExalateClient(http, base, BearerToken("t"), read_retries=0)
                site = Site.of(SiteConfig("default", base, BearerToken("t")), exalate, list_ttl=60)
                services = build_services(
                    repository=store,
                    queue=store.outbox,
                    sites=Sites([site]),
                    vault=Vault(Fernet.generate_key()),
                    policy=ApproverPolicy(Routes((), rule), Groups()),
                    notifier=RecordingNotifier(),
                    me=f"replica-{number}",
                )
                replicas.append(services.requests)
                stores.append(store)
            name = f"acme_{uuid.uuid4().hex[:12]}"
            fields = RequestFields("acme", "partner", name, "", "SUP")
            request = await stores[0].add(fields, REQUESTER, utc_now(), route=rule)
            counted: list[str] = []
            rejected: list[str] = []

            async def click(c: Click) -> None:
                service = replicas[c.replica]
                with contextlib.suppress(ApprovalError):  # a refused or losing click
                    if c.kind == "reject":
                        await service.reject(request.id, c.who, "no")
                        rejected.append(c.who)
                    else:
                        await service.approve(request.id, c.who)
                        counted.append(c.who)

            for batch in batches:
                await asyncio.gather(*(click(c) for c in batch))
            final = await stores[1].get(request.id)
            history = await stores[1].history(request.id)
    finally:
        for engine in engines:
            await engine.dispose()

    assert final is not None
    created = [c for c in simulator.create_calls if c.get("name") == name]
    approvals = [e for e in history if e.note and e.note.startswith("approved")]
    decisions = [e for e in history if e.from_status is Status.PENDING_APPROVAL]
    decisions = [e for e in decisions if e.to_status is not Status.PENDING_APPROVAL]
    # Approvals are exact: each counted click once, from distinct eligible people.
    assert sorted(final.approved_by) == sorted(counted)
    assert len(set(final.approved_by)) == len(final.approved_by)
    assert set(final.approved_by) <= ELIGIBLE
    assert [e.actor for e in approvals] == list(final.approved_by)
    assert set(rejected) <= ELIGIBLE
    assert len(decisions) <= 1  # one decision, one winner
    assert len(created) <= 1  # never a second connection
    if created:
        assert len(final.approved_by) >= needed
        assert decisions[0].to_status is Status.INITIATING
        assert not rejected
    if rejected:
        assert final.status is Status.REJECTED
        assert not created
        assert len(final.approved_by) < needed
    if final.status is Status.PENDING_APPROVAL:
        assert len(final.approved_by) < needed  # never stuck with the count reached


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(needed=st.integers(1, 3), batches=BATCHES)
def test_a_connection_needs_n_distinct_eligible_approvals_and_no_rejection(
    backend: str, bot_database_url: str, needed: int, batches: list[list[Click]]
) -> None:
    asyncio.run(_scenario(bot_database_url, needed, batches))
