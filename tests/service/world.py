"""The service wired to in-memory fakes of every port: no HTTP, no database, no Slack.

``make_world`` builds what the runtime builds (``build_services``) over an
``InMemoryRequestStore``, one ``FakeExalate`` per site, a ``RecordingNotifier``, a real
``Vault`` and a clock that moves only when a test moves it. Passing the same store,
Exalates and clock to a second ``make_world`` is a restart with other settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet

from bot.approvals.model import ConnectionRequest, Status
from bot.approvals.routes import Route, Routes, Rule
from bot.approvals.rules import Draft
from bot.approvers import ApproverPolicy
from bot.ports import GroupDirectory
from bot.service import (
    ConnectionService,
    InvitationCodes,
    Lifecycle,
    Listings,
    Services,
    Site,
    Sites,
    build_services,
)
from bot.vault import Vault
from tests.fakes.exalate import FakeExalate, fake_site
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.repository import InMemoryRequestStore

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ALICE = "U0ALICE"  # asks for connections
BOB, CAROL = "U0BOB", "U0CAROL"  # approvers
EVE = "U0EVE"  # neither
DEFAULT_RULE = Rule((BOB, CAROL))

APPROVAL_TTL = timedelta(days=7)
REMIND_AFTER = timedelta(days=3)
STUCK_AFTER = timedelta(seconds=45)


class Clock:
    """Time that stands still until a test moves it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


class NoGroups:
    """A Slack with no user groups: approvers are named one by one."""

    async def members(self, group_id: str) -> frozenset[str]:
        return frozenset()


@dataclass
class World:
    services: Services
    store: InMemoryRequestStore
    notifier: RecordingNotifier
    vault: Vault
    clock: Clock
    sites: Sites
    exalates: dict[str, FakeExalate]

    @property
    def requests(self) -> ConnectionService:
        return self.services.requests

    @property
    def codes(self) -> InvitationCodes:
        return self.services.codes

    @property
    def listings(self) -> Listings:
        return self.services.listings

    @property
    def lifecycle(self) -> Lifecycle:
        return self.services.lifecycle

    def site(self, name: str = "default") -> Site:
        return self.sites[name]

    def exalate(self, name: str = "default") -> FakeExalate:
        return self.exalates[name]

    async def submit(
        self,
        requester: str = ALICE,
        *,
        remote: str = "partner",
        name: str = "",
        site: str = "",
        local: str = "acme",
    ) -> ConnectionRequest:
        """Submit a valid form; its card and the requester's note go out."""
        draft = Draft(local, remote, name, "Support sync", "SUP", site)
        submission = await self.requests.submit(draft, requester, check_within=5)
        assert submission.request is not None, submission.errors
        await self.flush()
        return await self.now(submission.request)

    async def invited(self, requester: str = ALICE, **draft: str) -> ConnectionRequest:
        """A request submitted and approved: its connection created, its code delivered."""
        request = await self.submit(requester, **draft)
        invited = await self.requests.approve(request.id, BOB)
        assert invited.status is Status.INVITED, invited.error
        await self.flush()
        return await self.now(invited)

    async def flush(self) -> None:
        """Send what the outbox holds that is due, as the sender's loop would."""
        await self.services.outbox.send_due()

    async def now(self, request: ConnectionRequest) -> ConnectionRequest:
        """The request as stored now."""
        stored = await self.store.get(request.id)
        assert stored is not None
        return stored


def make_world(
    sites: Mapping[str, Mapping[str, object]] | None = None,
    *,
    store: InMemoryRequestStore | None = None,
    notifier: RecordingNotifier | None = None,
    exalates: dict[str, FakeExalate] | None = None,
    clock: Clock | None = None,
    vault: Vault | None = None,
    routes: tuple[Route, ...] = (),
    groups: GroupDirectory | None = None,
) -> World:
    """``sites`` maps each site's name to its ``SiteConfig`` settings; one ``default``
    site with every project allowed unless given. Requests no route matches are decided
    by Bob or Carol."""
    settings = sites if sites is not None else {"default": {}}
    exalates = exalates if exalates is not None else {}
    for name in settings:
        exalates.setdefault(name, FakeExalate())
    built = Sites([fake_site(name, exalates[name], **dict(s)) for name, s in settings.items()])
    store = store or InMemoryRequestStore()
    notifier = notifier or RecordingNotifier()
    clock = clock or Clock()
    vault = vault or Vault(Fernet.generate_key())
    services = build_services(
        repository=store,
        queue=store.outbox,
        sites=built,
        vault=vault,
        policy=ApproverPolicy(
            Routes(routes, DEFAULT_RULE),
            groups or NoGroups(),
            clock=lambda: clock.now.timestamp(),  # group lookups age as the test moves time
        ),
        notifier=notifier,
        approval_ttl=APPROVAL_TTL,
        remind_after=REMIND_AFTER,
        stuck_after=STUCK_AFTER,
        clock=clock,
    )
    return World(services, store, notifier, vault, clock, built, exalates)
