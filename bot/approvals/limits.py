"""How much one person may ask for, and the refusals when a submission goes past it or
claims a name already claimed. The store checks them inside the write that adds a
request, so they hold however many processes submit at once."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.approvals.model import ConnectionRequest

HOUR = timedelta(hours=1)


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


@dataclass(frozen=True, slots=True)
class Submitter:
    """Who submits a form, when, and how many submissions an hour they may make: what
    the live checks need to count the submissions Jira refuses."""

    requester: str
    at: datetime
    per_hour: int


class RefusedInJira:
    """Per person, the submissions of the last hour that reached Jira and were refused
    there (a project it lacks, a name it has): they store nothing, so the database's
    count of requests an hour never sees them, though each cost Jira a call.

    Kept in this process's memory: a count lost at a restart, or split between
    replicas, grants a person a few more refusals that hour; in exchange a submission
    that stores nothing writes nothing either. At most ``per_hour`` moments are kept per
    person, and only people refused within the hour.
    """

    def __init__(self) -> None:
        self._moments: dict[str, deque[datetime]] = {}

    def free_at(self, submitter: Submitter) -> datetime | None:
        """When the person may submit again, if ``per_hour`` refusals of the hour before
        ``at`` are theirs; None when they may now."""
        since = submitter.at - HOUR
        recent = [moment for moment in self._moments.get(submitter.requester, ()) if moment > since]
        if len(recent) < submitter.per_hour:
            return None
        return recent[len(recent) - submitter.per_hour] + HOUR

    def count(self, submitter: Submitter) -> None:
        """One more refusal for the person, at ``at``; people whose last refusal left
        the hour are forgotten."""
        since = submitter.at - HOUR
        for person in [p for p, moments in self._moments.items() if moments[-1] <= since]:
            del self._moments[person]
        kept = self._moments.get(submitter.requester, ())
        moments = deque(kept, maxlen=submitter.per_hour)
        moments.append(submitter.at)
        self._moments[submitter.requester] = moments
