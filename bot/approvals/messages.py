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

    @property
    def lane(self) -> Lane:
        if self in (Say.POST_CARD, Say.UPDATE_CARD, Say.NOTE):
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
    """A message waiting in the outbox, with the request as it was when it was written
    (``snapshot``: a message is worded as of its moment)."""

    id: int
    request_id: int
    message: Message
    snapshot: ConnectionRequest | None
    """None for messages written by a migration: they speak of the request as it is."""
    attempts: int = 0
    parked: str | None = None
    """Slack's reason while the message waits for a cause that will not heal by itself."""
