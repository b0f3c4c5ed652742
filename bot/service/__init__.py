"""The application core: what people do with requests (``ConnectionService``) and what
Exalate and time do to them (``Lifecycle``), over one transition helper.

``build_services`` wires the two around the parts they share; it is the only way the
runtime and the tests make them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.approvals.limits import SubmissionLimits
from bot.approvers import ApproverPolicy
from bot.metrics import Metrics
from bot.ports import JiraProject, Notifier, ReplicaDirectory, RequestStore
from bot.service.checks import LiveChecks
from bot.service.initiation import Initiation
from bot.service.lifecycle import Lifecycle
from bot.service.requests import ConnectionService, Submission
from bot.service.site import Site, SiteHealth, Sites, UnknownSite
from bot.service.transitions import CARD_CLAIM_LIFETIME, Transitions, utc_now
from bot.vault import Vault

__all__ = [
    "CARD_CLAIM_LIFETIME",
    "ConnectionService",
    "JiraProject",
    "Lifecycle",
    "Services",
    "Site",
    "SiteHealth",
    "Sites",
    "Submission",
    "UnknownSite",
    "build_services",
    "utc_now",
]


@dataclass(frozen=True, slots=True)
class Services:
    requests: ConnectionService
    lifecycle: Lifecycle


def build_services(
    *,
    repository: RequestStore,
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
) -> Services:
    """The use cases and the life cycle over the same sites, sharing one transition
    helper and one record of the initiations in flight. ``me`` is this replica's id,
    recorded on each request it initiates, so the others know when its creator is gone."""
    transitions = Transitions(repository, notifier, vault, metrics or Metrics(), clock)
    initiation = Initiation(transitions, sites, me=me)
    requests = ConnectionService(
        transitions,
        initiation,
        LiveChecks(repository, sites),
        sites,
        policy=policy,
        limits=limits,
        approval_ttl=approval_ttl,
    )
    lifecycle = Lifecycle(
        transitions,
        initiation,
        sites,
        approval_ttl=approval_ttl,
        remind_after=remind_after,
        stuck_after=stuck_after,
        replicas=replicas,
    )
    return Services(requests, lifecycle)
