"""What people are told about a request, as the service asks for it: the kinds of
message, and one message waiting in the outbox.

A message is written in the same transaction as the change it reports and sent later,
by whichever replica takes it: retried until Slack takes it, never lost. Messages go
out in order per lane (the card and its thread; the requester's DMs; the approver's),
so a reply never arrives before the card it answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.approvals.model import ConnectionRequest


class Notice(StrEnum):
    """What a note in the approval card's thread is about."""

    STATE_CHANGED = "state_changed"  # accepted, deactivated, gone: the card's news, kept
    EXALATE_STATUS = "exalate_status"  # Exalate reports a status the bot does not know
    INVITE_REMINDER = "invite_reminder"  # the partner has not accepted for a long time
    CONNECTION_APPEARED = "connection_appeared"  # an assisted connection now exists
    APPROVED = "approved"  # one approval of several needed, from the latest approver
    ESCALATED = "escalated"  # undecided too long: the escalation group is called in


class Lane(StrEnum):
    """Where a message goes; messages of one request's lane go out in order."""

    CARD = "card"
    REQUESTER = "requester"
    APPROVER = "approver"


class Say(StrEnum):
    """A kind of message."""

    POST_CARD = "post_card"
    UPDATE_CARD = "update_card"
    """Redraw the card from the request as it is when sent: only the latest counts."""
    NOTE = "note"
    TELL_REQUESTER = "tell_requester"
    DELIVER_CODE = "deliver_code"
    """The invitation code, read sealed from the request when sent, to its requester."""
    REMIND = "remind"
    CLOSE_INVITATION = "close_invitation"
    GUIDE_APPROVER = "guide_approver"
    POST_INCIDENTS = "post_incidents"
    """Post an incident card (``OutboxItem.card_id``), drawn as it is when sent."""
    UPDATE_INCIDENTS = "update_incidents"
    """Redraw an incident card: only the latest counts."""
    INCIDENT_NOTE = "incident_note"
    """A reply in an incident card's thread; what it says is the item's ``note``."""

    @property
    def redraws(self) -> bool:
        """Whether it redraws a card: the newest such message waiting stands for all."""
        return self in (Say.UPDATE_CARD, Say.UPDATE_INCIDENTS)

    @property
    def lane(self) -> Lane:
        if self in (
            Say.POST_CARD,
            Say.UPDATE_CARD,
            Say.NOTE,
            Say.POST_INCIDENTS,
            Say.UPDATE_INCIDENTS,
            Say.INCIDENT_NOTE,
        ):
            return Lane.CARD
        if self is Say.GUIDE_APPROVER:
            return Lane.APPROVER
        return Lane.REQUESTER


@dataclass(frozen=True, slots=True)
class Message:
    """A message to send about a request; ``notice`` says what a thread note is about."""

    say: Say
    notice: Notice | None = None


CARD = Message(Say.UPDATE_CARD)
REQUESTER = Message(Say.TELL_REQUESTER)
EVERYONE = (CARD, REQUESTER)
"""What a change of state tells: the card redrawn, and the requester."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message waiting in the outbox, about a request (with the request as it was when
    it was written, ``snapshot``: a message is worded as of its moment) or about an
    incident card (``card_id``, and what a thread note says, ``note``: a
    ``bot.health.notes.Note`` as JSON)."""

    id: int
    request_id: int | None
    message: Message
    snapshot: ConnectionRequest | None
    """None for messages written by a migration: they speak of the request as it is."""
    attempts: int = 0
    parked: str | None = None
    """Slack's reason while the message waits for a cause that will not heal by itself."""
    card_id: int | None = None
    note: str | None = None
