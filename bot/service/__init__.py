"""The application core: what people do with requests (``ConnectionService``) and what
Exalate and time do to them (``Lifecycle``), over one transition helper.

``build_services`` wires the two around the parts they share; it is the only way the
runtime and the tests make them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.approvers import ApproverPolicy
from bot.cache import TimedCache
from bot.exalate import Connection, ExalateClient, Project
from bot.metrics import Metrics
from bot.ports import Notifier
from bot.service.checks import LiveChecks
from bot.service.initiation import Initiation
from bot.service.lifecycle import Lifecycle, SeenInExalate
from bot.service.requests import ConnectionService, Submission
from bot.service.transitions import CARD_CLAIM_LIFETIME, Transitions, utc_now
from bot.vault import Vault
from storage import RequestRepository, SubmissionLimits
from storage.replicas import Replicas

__all__ = [
    "CARD_CLAIM_LIFETIME",
    "ConnectionService",
    "Lifecycle",
    "Services",
    "Submission",
    "build_services",
    "utc_now",
]


@dataclass(frozen=True, slots=True)
class Services:
    requests: ConnectionService
    lifecycle: Lifecycle


def build_services(
    *,
    repository: RequestRepository,
    exalate: ExalateClient,
    vault: Vault,
    policy: ApproverPolicy,
    notifier: Notifier,
    projects: TimedCache[list[Project]],
    connections: TimedCache[list[Connection]],
    approval_ttl: timedelta = timedelta(days=7),
    remind_after: timedelta = timedelta(days=3),
    stuck_after: timedelta = timedelta(seconds=45),
    clock: Callable[[], datetime] = utc_now,
    metrics: Metrics | None = None,
    assisted: bool = False,
    project_allowed: Callable[[str], bool] = lambda _key: True,
    limits: SubmissionLimits = SubmissionLimits(max_open=3, per_hour=10),  # noqa: B008
    replicas: Replicas | None = None,
) -> Services:
    """The use cases and the life cycle, sharing one transition helper, one record of
    the initiations in flight and one view of what Exalate showed last."""
    transitions = Transitions(repository, notifier, vault, metrics or Metrics(), clock)
    me = replicas.me.id if replicas is not None else None
    initiation = Initiation(transitions, exalate, connections, assisted=assisted, me=me)
    checks = LiveChecks(repository, exalate, projects, connections, project_allowed)
    seen = SeenInExalate()
    requests = ConnectionService(
        transitions,
        initiation,
        checks,
        seen,
        policy=policy,
        limits=limits,
        approval_ttl=approval_ttl,
    )
    lifecycle = Lifecycle(
        transitions,
        initiation,
        exalate,
        seen,
        approval_ttl=approval_ttl,
        remind_after=remind_after,
        stuck_after=stuck_after,
        replicas=replicas,
    )
    return Services(requests, lifecycle)
