"""The application core: what people do with requests (``ConnectionService``), with
their codes (``InvitationCodes``) and what they read (``Listings``), and what Exalate and
time do to them (``Lifecycle``), each over the sites it serves, the one path of state
changes (``States``) and the telling of people (``Telling``).

``build_services`` wires them around the parts they share; it is the only way the
runtime and the tests make them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.alert_config import Alerts
from bot.approvals.limits import SubmissionLimits
from bot.approvers import ApproverPolicy
from bot.metrics import Metrics
from bot.ports import (
    IncidentNotifier,
    IncidentStore,
    JiraProject,
    Notifier,
    OutboxQueue,
    People,
    ReplicaDirectory,
    RequestStore,
)
from bot.service.checks import LiveChecks
from bot.service.codes import InvitationCodes
from bot.service.health import HealthWatch
from bot.service.initiation import Initiation
from bot.service.lifecycle import Lifecycle
from bot.service.listings import Listings
from bot.service.outbox import NobodyLeft, OutboxSender, SlackHealth
from bot.service.requests import ConnectionService, Submission
from bot.service.site import Site, SiteHealth, SiteRetired, Sites, UnknownSite
from bot.service.states import States, utc_now
from bot.vault import Vault

__all__ = [
    "ConnectionService",
    "HealthWatch",
    "InvitationCodes",
    "JiraProject",
    "Lifecycle",
    "Listings",
    "OutboxSender",
    "Services",
    "Site",
    "SiteHealth",
    "SiteRetired",
    "Sites",
    "SlackHealth",
    "Submission",
    "UnknownSite",
    "build_services",
    "utc_now",
]


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the Slack side and the jobs use, built over the same sites."""

    requests: ConnectionService
    codes: InvitationCodes
    listings: Listings
    lifecycle: Lifecycle
    outbox: OutboxSender
    sites: Sites
    health: HealthWatch | None = None
    """Sync health; None where no incident store was given (tests of other rules)."""


def build_services(
    *,
    repository: RequestStore,
    queue: OutboxQueue,
    sites: Sites,
    vault: Vault,
    policy: ApproverPolicy,
    notifier: Notifier,
    approval_ttl: timedelta = timedelta(days=7),
    remind_after: timedelta = timedelta(days=3),
    stuck_after: timedelta = timedelta(seconds=45),
    clock: Callable[[], datetime] = utc_now,
    metrics: Metrics | None = None,
    limits: SubmissionLimits = SubmissionLimits(max_open=3, per_hour=10),  # noqa: B008
    replicas: ReplicaDirectory | None = None,
    me: str | None = None,
    approvals: str = "approvals",
    people: People | None = None,
    incidents: IncidentStore | None = None,
    incident_notifier: IncidentNotifier | None = None,
    alerts: Alerts = Alerts(),  # noqa: B008
) -> Services:
    """The use cases and the life cycle over the same sites, each handed the
    collaborators it uses: the one path of state changes, telling people, the store.
    ``me`` is this replica's id, recorded on each request it initiates, so the others
    know when its creator is gone. Sync health is built over ``incidents``, when given."""
    metrics = metrics or Metrics()
    states = States(repository, clock)
    people = people or NobodyLeft()
    outbox = OutboxSender(
        queue,
        repository,
        notifier,
        vault,
        metrics,
        clock,
        me=me or "this",
        people=people,
        approvals=approvals,
        incidents=incidents,
        incident_notifier=incident_notifier,
    )
    initiation = Initiation(states, notifier, repository, vault, metrics, sites, me=me)
    requests = ConnectionService(
        states,
        outbox.health,
        people,
        repository,
        initiation,
        LiveChecks(repository, sites),
        sites,
        metrics,
        policy=policy,
        limits=limits,
        approval_ttl=approval_ttl,
    )
    lifecycle = Lifecycle(
        states,
        repository,
        initiation,
        sites,
        approval_ttl=approval_ttl,
        remind_after=remind_after,
        stuck_after=stuck_after,
        replicas=replicas,
    )
    return Services(
        requests,
        InvitationCodes(states, repository, vault, initiation, policy),
        Listings(states, repository, sites, policy),
        lifecycle,
        outbox,
        sites,
        None
        if incidents is None
        else HealthWatch(incidents, repository, policy, alerts, clock, default_channel=approvals),
    )
