"""How much one person may ask for, and the refusals when a submission goes past it or
claims a name already claimed. The store checks them inside the write that adds a
request, so they hold however many processes submit at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.approvals.model import ConnectionRequest


class NameTaken(Exception):
    """Another open request of the same site already claims this connection name."""


@dataclass(frozen=True, slots=True)
class SubmissionLimits:
    """How much one person may ask for: open requests at once, submissions an hour."""

    max_open: int
    per_hour: int


class TooManyOpen(Exception):
    """The requester has ``max_open`` requests awaiting a decision; ``names`` are theirs,
    ``oldest`` is when the oldest of them began to wait."""

    def __init__(self, names: list[str], oldest: datetime) -> None:
        super().__init__(", ".join(names))
        self.names, self.oldest = names, oldest


class TooFrequent(Exception):
    """The requester submitted ``per_hour`` requests in the last hour; ``free_at`` is
    when the oldest of them leaves that hour."""

    def __init__(self, free_at: datetime) -> None:
        super().__init__(free_at.isoformat())
        self.free_at = free_at


class AlreadySubmitted(Exception):
    """This form was submitted before (Slack retried it, or it was replayed): the
    request it stored is ``request``, and nothing new is stored."""

    def __init__(self, request: ConnectionRequest) -> None:
        super().__init__(str(request.id))
        self.request = request
