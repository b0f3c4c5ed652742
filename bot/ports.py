"""What the service needs from the outside world, as small Protocols.

The service decides *that* people are told something; the Slack side decides *how*.
It decides *which* request moves where; the store makes each move one compare-and-set.
Keeping these as Protocols lets ``bot/`` stay ignorant of Slack payload shapes and SQL,
and lets the service's rules be tested with in-memory fakes (``tests/service``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.approvals.limits import SubmissionLimits
from bot.approvals.messages import Message, Notice, OutboxItem
from bot.approvals.model import AuditEvent, ConnectionRequest, Page, RequestFields, Status
from bot.approvals.routes import Rule
from bot.exalate.models import (
    ConnectionList,
    ConnectionSpec,
    CreatedConnection,
    Project,
    SyncQueue,
)
from bot.health.model import Incident, IncidentCard, Opening, SiteView
from bot.health.notes import Note
from bot.health.watch import WatchState


class DeliveryFailed(Exception):
    """A message could not be delivered; ``str()`` is Slack's reason code only, and
    ``retry_after`` the seconds Slack asked to wait (a rate limit), if it said."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Notifier(Protocol):
    """Tells people what happened to a request."""

    async def post_card(self, request: ConnectionRequest) -> str:
        """Post the approval card for a new request; returns a reference to update it by."""

    async def update_card(self, request: ConnectionRequest) -> None:
        """Redraw the approval card from the request's current state."""

    async def tell_requester(self, request: ConnectionRequest) -> None:
        """Send the requester a private note fitting the request's current state."""

    async def deliver_invitation(self, request: ConnectionRequest, code: str) -> str:
        """Hand the invitation code to the requester, and to nobody else.

        Returns a reference to the message, so it can be edited once the code is spent.
        Raises DeliveryFailed when the requester cannot be reached, so the code can be
        kept for a later attempt.
        """

    async def close_invitation(self, request: ConnectionRequest) -> None:
        """Edit the message that carried the code: the code is spent, say what became of it."""

    async def note_in_thread(self, request: ConnectionRequest, notice: Notice) -> None:
        """Add a reply under the approval card, so the channel keeps the story."""

    async def remind_requester(self, request: ConnectionRequest) -> None:
        """Tell the requester the partner has not accepted the invitation yet."""

    async def guide_approver(self, request: ConnectionRequest) -> None:
        """Give the approver the exact values for the Exalate console's wizard."""


class People(Protocol):
    """Who is still in the workspace (Slack's ``users.info``)."""

    async def deactivated(self, user_id: str) -> bool:
        """Whether the account is deactivated; False when Slack cannot say just now (the
        message to them fails then on its own, and is tried again); DeliveryFailed when
        Slack asks to wait first (a rate limit)."""


class DirectoryUnavailable(Exception):
    """Slack could not say who is in a user group just now."""


class GroupDirectory(Protocol):
    """Resolves a user-group id (``S…``) to its members' user ids."""

    async def members(self, group_id: str) -> frozenset[str]:
        """The group's current members."""


@dataclass(frozen=True, slots=True)
class JiraProject:
    """A Jira project someone may choose for incoming sync, as the form shows it."""

    key: str
    name: str


class ExalatePort(Protocol):
    """What the use cases ask of one site's Exalate on Jira (``bot.exalate.ExalateClient``;
    in the service tests, a fake). Each call raises ``bot.exalate.ExalateError``."""

    async def connection_list(self) -> ConnectionList:
        """Exalate's connections, with whether the list is complete."""

    async def list_projects(self) -> list[Project]:
        """The Jira projects the bot's user can browse."""

    async def get_project(self, key: str) -> Project | None:
        """The project ``key``, or None when Jira has none."""

    async def create_connection(self, spec: ConnectionSpec) -> CreatedConnection:
        """Create a private Script connection; never retried."""

    async def queue_size(self, queue: SyncQueue) -> int:
        """How many sync events wait in ``queue`` (Exalate's count-only monitoring call);
        ``ExalateEndpointMissing`` where the node has no such endpoint."""


class RequestStore(Protocol):
    """The requests, their audit trail and the messages they leave behind
    (``storage.RequestRepository``).

    Every write that changes a state is a compare-and-set: it returns the request as
    written, or None when another caller changed it first, and that caller alone goes
    on to the side effect. What to tell people of a write (``tell``) is written in the
    same transaction, to the outbox, so it is never lost. ``writes`` counts this
    process's committed writes, so a shared read knows when it went stale.
    """

    writes: int

    async def add(
        self,
        fields: RequestFields,
        requester: str,
        at: datetime,
        limits: SubmissionLimits | None = None,
        *,
        view_id: str | None = None,
        route: Rule | None = None,
    ) -> ConnectionRequest:
        """Store a new request awaiting approval, decided under ``route`` (None: the
        default approvers), its card to post; NameTaken, TooManyOpen, TooFrequent, or
        AlreadySubmitted for a form seen before."""

    async def transition(
        self,
        request: ConnectionRequest,
        target: Status,
        *,
        actor: str,
        at: datetime,
        note: str | None = None,
        tell: Iterable[Message] = (),
        **changes: object,
    ) -> ConnectionRequest | None:
        """Move ``request`` to ``target`` if nobody moved it since it was read, and
        audit it; ``error`` is cleared unless given."""

    async def approve(
        self,
        request: ConnectionRequest,
        approver: str,
        *,
        at: datetime,
        complete: bool,
        note: str,
        tell: Iterable[Message] = (),
        **changes: object,
    ) -> ConnectionRequest | None:
        """Count one more approval of a request awaiting approval, if nobody approved or
        moved it since it was read; ``complete`` also moves it to ``initiating``."""

    async def escalate(
        self, request: ConnectionRequest, *, at: datetime, tell: Iterable[Message] = ()
    ) -> ConnectionRequest | None:
        """Mark a request awaiting approval as escalated, the first time only."""

    async def annotate(
        self,
        request_id: int,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
        **changes: object,
    ) -> ConnectionRequest | None:
        """Write columns that do not change the state."""

    async def store_code(
        self,
        request_id: int,
        sealed: bytes,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        """Keep a code, only if the request is invited and has none yet."""

    async def note_connection(
        self,
        request_id: int,
        connection_id: str,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        """Record the id of an assisted connection that appeared, the first time only."""

    async def note_status(
        self,
        request: ConnectionRequest,
        observed: str | None,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        """Record Exalate's status if it changed and nobody recorded it yet."""

    async def claim_reminder(
        self,
        request: ConnectionRequest,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> bool:
        """Count one more reminder, unless another process just did."""

    async def tell(
        self, request: ConnectionRequest, messages: Iterable[Message], at: datetime
    ) -> None:
        """Write messages no change of the request causes."""

    async def record(self, request: ConnectionRequest, actor: str, at: datetime, note: str) -> None:
        """Audit an event that changes no state."""

    async def set_card(self, request_id: int, card_ref: str) -> None:
        """Remember where the card is, once posted."""

    async def get(self, request_id: int) -> ConnectionRequest | None:
        """The request as stored now."""

    async def submitted_from(self, view_id: str) -> ConnectionRequest | None:
        """The request a form stored, if it stored one."""

    async def invitation_code(self, request_id: int) -> bytes | None:
        """The sealed invitation code, read only when it is about to be delivered."""

    async def with_status(
        self, statuses: Iterable[Status], site: str | None = None
    ) -> list[ConnectionRequest]:
        """Requests in any of ``statuses`` (on ``site``), newest first."""

    async def claimed_connections(self, site: str) -> tuple[set[str], set[str]]:
        """The site's connection ids requests hold, and the names open requests may
        yet own."""

    async def page(
        self,
        statuses: Iterable[Status] | None = None,
        *,
        limit: int,
        requester: str | None = None,
        changed_since: datetime | None = None,
        site: str | None = None,
    ) -> Page:
        """The newest ``limit`` requests matching every given filter, and their total."""

    async def named(
        self, connection_name: str, site: str | None = None
    ) -> ConnectionRequest | None:
        """The newest request for a connection name (on ``site``)."""

    async def sites_named(self, connection_name: str) -> list[str]:
        """The sites that have a request with this name."""

    async def name_is_open(self, connection_name: str, site: str) -> bool:
        """Whether an open request of ``site`` claims the name."""

    async def history(self, request_id: int) -> list[AuditEvent]:
        """The request's audit trail, oldest first."""


class OutboxQueue(Protocol):
    """The messages waiting to be sent (``storage.outbox.OutboxQueue``): taken one by
    one, so each is sent by one replica, in order per request and lane."""

    async def take_due(
        self, now: datetime, holder: str, until: datetime, limit: int = 50
    ) -> list[OutboxItem]:
        """Hold the messages that may be sent now (the head of each lane, due, free),
        oldest first; each is handed to one taker."""

    async def sent(self, item: OutboxItem, at: datetime, *, holder: str) -> None:
        """Slack took it (a card's redraw takes the older ones with it)."""

    async def newest_redraw(self, item: OutboxItem) -> int | None:
        """The newest redraw waiting for the card ``item`` redraws."""

    async def later(self, item: OutboxItem, due_at: datetime, *, parked: str | None = None) -> None:
        """Try again at ``due_at``; ``parked`` names a cause that will not heal by itself."""

    async def unpark(self, causes: Iterable[str], now: datetime) -> None:
        """What waited for ``causes`` is due now."""

    async def parked(self) -> dict[str, int]:
        """How many messages wait for each such cause."""

    async def holders(self) -> set[str]:
        """The replicas holding messages not sent yet."""

    async def release(self, holders: Iterable[str]) -> None:
        """Let go of what ``holders`` held."""

    async def waiting(self) -> int:
        """Messages not sent yet."""


class ReplicaDirectory(Protocol):
    """Which bot processes are gone (``storage.replicas.Replicas``)."""

    async def gone(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that are known to have stopped."""


class IncidentNotifier(Protocol):
    """Shows incidents in Slack: a card per group of incidents, and its thread."""

    async def post_incidents(self, card: IncidentCard) -> str:
        """Post the card in its channel; returns a reference to update it by."""

    async def update_incidents(self, card: IncidentCard) -> None:
        """Redraw the card from its incidents as they are now."""

    async def note_incident(self, card: IncidentCard, note: Note) -> None:
        """Add a reply under the card."""


class IncidentStore(Protocol):
    """Incidents, their cards and audit, and the watch's memory of each site
    (``storage.incidents.IncidentRepository``). Opening is unique per condition; every
    change of a card is a compare-and-set on its version, None when another came first;
    what people are told is written to the outbox in the same transaction."""

    async def watch(self, site: str) -> WatchState:
        """What the site's watch remembers (empty the first time)."""

    async def save_watch(self, site: str, state: WatchState, view: SiteView) -> None:
        """Remember ``state``, and the site as the poll saw it."""

    async def views(self) -> list[SiteView]:
        """Each site's last poll."""

    async def open_incidents(self, site: str | None = None) -> list[Incident]:
        """The incidents open now (on ``site``)."""

    async def open(self, openings: Sequence[Opening], at: datetime) -> list[Incident]:
        """Open what nobody opened yet; those of a channel share a card."""

    async def change(self, incident: Incident, detail: str, at: datetime) -> Incident | None:
        """The open incident's condition reads ``detail`` now."""

    async def resolve(self, incident: Incident, at: datetime) -> Incident | None:
        """Close the incident, once."""

    async def card(self, card_id: int) -> IncidentCard | None:
        """The card with its incidents."""

    async def open_cards(self) -> list[IncidentCard]:
        """The cards with an open incident."""

    async def set_card(self, card_id: int, card_ref: str) -> None:
        """Remember where the card was posted."""

    async def acknowledge(
        self, card: IncidentCard, actor: str, at: datetime
    ) -> IncidentCard | None:
        """Record the acknowledgement, the first only."""

    async def snooze(
        self, card: IncidentCard, actor: str, until: datetime, at: datetime
    ) -> IncidentCard | None:
        """Hold the reminder until ``until``."""

    async def remind(self, card: IncidentCard, at: datetime) -> bool:
        """Send the one reminder, unless another process did."""

    async def record(self, card_id: int, actor: str, note: str, at: datetime) -> None:
        """Audit a press that changed nothing."""

    async def open_counts(self) -> dict[tuple[str, str], int]:
        """Open incidents by site and kind."""
