"""What the service needs from the outside world, as small Protocols.

The service decides *that* people are told something; the Slack side decides *how*.
Keeping these as Protocols lets ``bot/`` stay ignorant of Slack payload shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.approvals.model import ConnectionRequest
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
