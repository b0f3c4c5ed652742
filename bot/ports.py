"""What the service needs from the outside world, as small Protocols.

The service decides *that* people are told something; the Slack side decides *how*.
Keeping these as Protocols lets ``bot/`` stay ignorant of Slack payload shapes.
"""

from __future__ import annotations

from typing import Protocol

from bot.approvals.model import ConnectionRequest


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

    async def deliver_invitation(self, request: ConnectionRequest, code: str) -> None:
        """Hand the invitation code to the requester, and to nobody else.

        Raises DeliveryFailed when the requester cannot be reached, so the code can be
        kept for a later attempt.
        """


class DirectoryUnavailable(Exception):
    """Slack could not say who is in a user group just now."""


class GroupDirectory(Protocol):
    """Resolves a user-group id (``S…``) to its members' user ids."""

    async def members(self, group_id: str) -> frozenset[str]:
        """The group's current members."""
