"""Connection requests and the table of states they may move between.

The life cycle is data (``TRANSITIONS``), not scattered ``if`` statements: the service,
the repository's compare-and-set and the tests all read the same table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.approvals.routes import Rule


class Status(StrEnum):
    """Where a request stands. Stored as its value, so renaming a member is a migration."""

    PENDING_APPROVAL = "pending_approval"
    INITIATING = "initiating"
    ASSISTED = "assisted"  # an admin creates it in the Exalate console, then pastes the code
    INVITED = "invited"
    ACTIVE = "active"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    DEACTIVATED = "deactivated"
    GONE = "gone"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING_APPROVAL: frozenset(
        {Status.INITIATING, Status.REJECTED, Status.CANCELLED, Status.EXPIRED}
    ),
    Status.INITIATING: frozenset({Status.INVITED, Status.FAILED, Status.ASSISTED}),
    Status.ASSISTED: frozenset({Status.INVITED, Status.ACTIVE, Status.DEACTIVATED, Status.EXPIRED}),
    # FAILED -> INVITED: a create whose answer came after the request was settled.
    Status.FAILED: frozenset({Status.INITIATING, Status.INVITED, Status.REJECTED}),
    Status.INVITED: frozenset({Status.ACTIVE, Status.DEACTIVATED, Status.EXPIRED, Status.GONE}),
    Status.ACTIVE: frozenset(),
    Status.REJECTED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.DEACTIVATED: frozenset(),
    Status.GONE: frozenset(),
}

# A request is "open" while its connection name is claimed: no second request may use it.
OPEN_STATUSES: frozenset[Status] = frozenset(
    {Status.PENDING_APPROVAL, Status.INITIATING, Status.ASSISTED, Status.FAILED, Status.INVITED}
)


def same_name(one: str, other: str) -> bool:
    """Whether two connection names are the same to Exalate: case does not count. The
    one rule everywhere names are compared (the database keeps ``open_name`` lower-cased
    the same way, see ``name_key``)."""
    return name_key(one) == name_key(other)


def name_key(name: str) -> str:
    """A connection name as compared: lower case."""
    return name.lower()


def can_transition(source: Status, target: Status) -> bool:
    """Whether the life cycle allows moving from ``source`` to ``target``."""
    return target in TRANSITIONS[source]


DEFAULT_SITE = "default"
"""The site of a bot configured by flat variables, and of every request made before
sites existed."""


@dataclass(frozen=True, slots=True)
class RequestFields:
    """What the requester asked for: the Exalate wizard's fields, already validated, and
    the site (the Exalate node) that is to create the connection.

    The site is not in the fingerprint: it never changes for a request, whose id is.
    """

    local_short_name: str
    remote_short_name: str
    connection_name: str
    description: str
    project_key: str
    site: str = DEFAULT_SITE


class CreateOutcome(StrEnum):
    """How the last attempt to create the connection in Exalate ended, as the bot knows it.

    Only an uncertain outcome, after the name was seen absent just before the attempt,
    lets the bot take a connection of that name as its own: a refusal proves the bot
    did not create it, and a name that was there before the attempt is someone else's.
    """

    NAME_TAKEN = "name_taken"
    """Exalate had a connection of this name that this request did not create (seen
    before calling create, or answered 409): not ours, never adopted."""
    REFUSED = "refused"
    """Exalate answered 4xx (or the call never left): nothing was created."""
    UNCERTAIN = "uncertain"
    """A timeout, a connection dropped after sending, a 5xx: it may have been created."""


class Problem(StrEnum):
    """What went wrong with a request, stored as its value in ``error`` beside what the
    other side said (``error_detail``). The Slack side words it, for each reader."""

    EXALATE = "exalate"
    """Exalate did not create the connection; the detail is its message (for admins)."""
    NAME_TAKEN = "name_taken"
    """Exalate has a connection of the name that this request did not create."""
    CODE_NOT_RECEIVED = "code_not_received"
    """Adopted after the create call's answer was lost: the bot has no code."""
    INTERRUPTED = "interrupted"
    """The bot stopped mid-creation and Exalate has no such connection."""
    UNDELIVERED = "undelivered"
    """Slack refused the code's DM; the detail is Slack's reason code."""
    REQUESTER_GONE = "requester_gone"
    """The requester's Slack account is deactivated: no code goes to nobody; an approver
    hands the request to someone else."""
    CARD_NOT_POSTED = "card_not_posted"
    """The approvals channel refused the card; the detail is Slack's reason code. Said
    to the requester only, never stored: the outbox posts the card once it can."""
    CREATE_REFUSED = "create_refused"
    """Exalate refused the create call for the bot's credentials or its Jira user's
    rights (401/403): a Retry fails the same way until an admin fixes the setting the
    detail names."""
    CREATE_NOT_TAKEN = "create_not_taken"
    """Exalate did not take the create call as the bot sends it (400/415), so the
    approver creates the connection in the console; the detail is Exalate's answer."""


class CodeDelivery(StrEnum):
    """How far an invitation's code got on its way to the requester, while it is on its way
    (``ConnectionRequest.code_delivery``). ``error`` says why in words, where there is a why.
    """

    NEVER_RECEIVED = "never_received"
    """The bot has no code: the connection is being created in the console, or was
    adopted after the answer to the create call was lost. An approver pastes it."""
    SENDING = "sending"
    """Stored, and its DM not sent yet, or the process stopped before it could record
    how sending went."""
    UNDELIVERED = "undelivered"
    """Stored, but Slack refused the DM: Resend code tries again."""
    DELIVERED = "delivered"
    """Stored and in the requester's DM (``code_dm_ref``): Show code shows it again."""


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    """A stored request, as read from the database at one moment.

    ``version`` grows with every transition; the repository's compare-and-set checks
    it, so a decision taken on a stale copy can never be applied.
    """

    id: int
    status: Status
    version: int
    fields: RequestFields
    requester: str
    created_at: datetime
    updated_at: datetime
    decided_by: str | None = None
    reason: str | None = None
    error: str | None = None
    """A ``Problem``'s value; a sentence in requests stored before problems had kinds."""
    error_detail: str | None = None
    exalate_connection_id: str | None = None
    card_ref: str | None = None
    has_invitation_code: bool = False
    exalate_status: str | None = None
    reminders_sent: int = 0
    code_dm_ref: str | None = None
    missed_polls: int = 0
    name_absent_at: datetime | None = None
    """When a complete list last showed the name free, just before a create attempt."""
    last_attempt: CreateOutcome | None = None
    """How that attempt ended; None while it runs, or if the process stopped during it."""
    initiated_by: str | None = None
    """The replica that moved it to ``initiating`` and is creating the connection."""
    route: Rule | None = None
    """Who decides it, as the routes said when it was made; None: the default approvers
    (``EXALATE_APPROVERS``), as they are now."""
    approved_by: tuple[str, ...] = ()
    """The distinct people who approved it, in order; it is created at the rule's count."""
    escalated_at: datetime | None = None
    """When its route's escalation group was called in to decide too."""

    @property
    def may_adopt(self) -> bool:
        """Whether a connection of this name in Exalate can be this request's own: only
        when the name was free right before an attempt whose outcome is not known."""
        return self.name_absent_at is not None and self.last_attempt in (
            None,
            CreateOutcome.UNCERTAIN,
        )

    @property
    def name_taken(self) -> bool:
        """Whether the last attempt met a connection of this name that is not ours."""
        return self.last_attempt is CreateOutcome.NAME_TAKEN

    @property
    def problem(self) -> Problem | None:
        """The kind of problem recorded, if it is one (older rows hold a sentence)."""
        try:
            return Problem(self.error) if self.error is not None else None
        except ValueError:
            return None

    @property
    def code_delivery(self) -> CodeDelivery | None:
        """Where the invitation code stands, while the requester waits for it or for the
        partner (``assisted`` and ``invited``); None in any other state.

        Read from what the delivery records: ``code_dm_ref`` once the DM is sent, and an
        ``error`` when it was refused. While a code is stored nothing else writes
        ``error``: a transition or a stored code clears it.
        """
        if self.status not in (Status.ASSISTED, Status.INVITED):
            return None
        if self.code_dm_ref is not None:
            return CodeDelivery.DELIVERED
        if not self.has_invitation_code:
            return CodeDelivery.NEVER_RECEIVED
        if self.error is not None:
            return CodeDelivery.UNDELIVERED
        return CodeDelivery.SENDING

    @property
    def fingerprint(self) -> str:
        """Names this request as it is now: its fields and its version.

        Decision buttons carry it, so a click on a card drawn before the request changed
        (decided, cancelled, retried) is refused instead of acting on something else.
        """
        return fingerprint(self.id, self.version, self.fields)


def fingerprint(request_id: int, version: int, fields: RequestFields) -> str:
    """16 hex digits of SHA-256 over the id, the version and every field."""
    parts = (
        str(request_id),
        str(version),
        fields.local_short_name,
        fields.remote_short_name,
        fields.connection_name,
        fields.description,
        fields.project_key,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


EXALATE_ACTOR = "exalate"
"""The actor of what Exalate caused (a connection created, failed, accepted)."""
BOT_ACTOR = "bot"
"""The actor of what the bot did on its own: an expiry, an initiation handed to the
console, an interrupted one settled."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of a request's history: a transition, or an event such as a reveal.

    ``actor`` is a Slack user id, or ``EXALATE_ACTOR`` or ``BOT_ACTOR``.
    """

    request_id: int
    at: datetime
    actor: str
    from_status: Status | None
    to_status: Status
    note: str | None


@dataclass(frozen=True, slots=True)
class Page:
    """The first requests of a longer list, and how long the whole list is."""

    items: tuple[ConnectionRequest, ...]
    total: int


@dataclass(frozen=True, slots=True)
class ForeignInvitation:
    """A connection Exalate reports pending that no request created: initiated in the
    Exalate console. ``since`` is when this bot first saw it pending."""

    name: str
    exalate_id: str
    since: datetime
    site: str = DEFAULT_SITE
