"""What the service needs from the outside world, as small Protocols.

The service decides *that* people are told something; the Slack side decides *how*.
It decides *which* request moves where; the store makes each move one compare-and-set.
Keeping these as Protocols lets ``bot/`` stay ignorant of Slack payload shapes and SQL,
and lets the service's rules be tested with in-memory fakes (``tests/service``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot.approvals.limits import SubmissionLimits
from bot.approvals.model import AuditEvent, ConnectionRequest, Page, RequestFields, Status
from bot.exalate.models import ConnectionList, ConnectionSpec, CreatedConnection, Project


class Notice(StrEnum):
    """What a note in the approval card's thread is about."""

    STATE_CHANGED = "state_changed"  # accepted, deactivated, gone: the card's news, kept
    EXALATE_STATUS = "exalate_status"  # Exalate reports a status the bot does not know
    INVITE_REMINDER = "invite_reminder"  # the partner has not accepted for a long time
    CONNECTION_APPEARED = "connection_appeared"  # an assisted connection now exists


class DeliveryFailed(Exception):
    """A message could not be delivered; ``str()`` is the channel's reason code only."""


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


class RequestStore(Protocol):
    """The requests and their audit trail (``storage.RequestRepository``).

    Every write that changes a state is a compare-and-set: it returns the request as
    written, or None when another caller changed it first, and that caller alone goes
    on to the side effect. ``writes`` counts this process's committed writes, so a
    shared read knows when it went stale.
    """

    writes: int

    async def add(
        self,
        fields: RequestFields,
        requester: str,
        at: datetime,
        limits: SubmissionLimits | None = None,
    ) -> ConnectionRequest:
        """Store a new request awaiting approval; NameTaken, TooManyOpen, TooFrequent."""

    async def transition(
        self,
        request: ConnectionRequest,
        target: Status,
        *,
        actor: str,
        at: datetime,
        note: str | None = None,
        **changes: object,
    ) -> ConnectionRequest | None:
        """Move ``request`` to ``target`` if nobody moved it since it was read, and
        audit it; ``error`` is cleared unless given."""

    async def annotate(self, request_id: int, **changes: object) -> ConnectionRequest | None:
        """Write columns that do not change the state."""

    async def store_code(self, request_id: int, sealed: bytes) -> ConnectionRequest | None:
        """Keep a code, only if the request is invited and has none yet."""

    async def note_connection(
        self, request_id: int, connection_id: str
    ) -> ConnectionRequest | None:
        """Record the id of an assisted connection that appeared, the first time only."""

    async def note_status(
        self, request: ConnectionRequest, observed: str | None
    ) -> ConnectionRequest | None:
        """Record Exalate's status if it changed and nobody recorded it yet."""

    async def claim_reminder(self, request: ConnectionRequest) -> bool:
        """Count one more reminder, unless another process just did."""

    async def record(self, request: ConnectionRequest, actor: str, at: datetime, note: str) -> None:
        """Audit an event that changes no state."""

    async def claim_card(self, request_id: int, at: datetime) -> bool:
        """Take the job of posting a request's card; False if someone has it."""

    async def set_card(self, request_id: int, card_ref: str) -> None:
        """Remember where the card is, once posted."""

    async def release_card(self, request_id: int) -> None:
        """Give a claim back after a failed post."""

    async def release_stale_card_claims(self, taken_before: datetime) -> None:
        """Void claims older than any post takes."""

    async def get(self, request_id: int) -> ConnectionRequest | None:
        """The request as stored now."""

    async def invitation_code(self, request_id: int) -> bytes | None:
        """The sealed invitation code, read only when it is about to be delivered."""

    async def without_card(self) -> list[ConnectionRequest]:
        """Requests awaiting approval whose card could not be posted yet."""

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
        not_requester: str | None = None,
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


class ReplicaDirectory(Protocol):
    """Which bot processes are gone (``storage.replicas.Replicas``)."""

    async def gone(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that are known to have stopped."""
