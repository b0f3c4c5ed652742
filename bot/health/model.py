"""Incidents and the cards that show them.

An *incident* is one condition on one site (a connection in Deactivated or Error, a sync
queue not draining, the node unreachable or refusing the credentials) from the poll that
confirmed it to the poll that saw it gone. Incidents that open together in one channel
share one *card*: people act on a card (Acknowledge, Snooze), and a card is the one new
message a channel gets for what opened at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.approvals.model import name_key
from bot.approvals.routes import Rule


class Kind(StrEnum):
    """What an incident is about (the ``kind`` label of ``exalate_incidents_open``)."""

    CONNECTION = "connection"
    """A connection went to Deactivated or Error; ``subject`` is its name."""
    QUEUE = "queue"
    """A sync queue above the threshold is not draining; ``subject`` is its direction."""
    NODE = "node"
    """The node is unreachable or refuses the credentials; ``subject`` is empty."""


class NodeTrouble(StrEnum):
    """Why a node's poll failed, as its incident says it."""

    UNREACHABLE = "unreachable"
    CREDENTIALS = "credentials refused"
    UNREADABLE = "answers the bot cannot read"


@dataclass(frozen=True, slots=True)
class Condition:
    """Something wrong on a site now. ``detail`` is what it is like at the moment: the
    connection's status as Exalate spells it, the queue's size, the node's trouble."""

    site: str
    kind: Kind
    subject: str
    detail: str

    @property
    def key(self) -> str:
        """The same incident across polls, restarts and replicas: at most one open per key."""
        return incident_key(self.site, self.kind, self.subject)


def incident_key(site: str, kind: Kind, subject: str) -> str:
    return f"{site}/{kind.value}/{name_key(subject)}"


@dataclass(frozen=True, slots=True)
class Incident:
    """One condition from its opening to its resolution."""

    id: int
    card_id: int
    condition: Condition
    opened_at: datetime
    resolved_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    @property
    def lasted(self) -> timedelta | None:
        return None if self.resolved_at is None else self.resolved_at - self.opened_at


@dataclass(frozen=True, slots=True)
class IncidentCard:
    """The message in an alerts channel for incidents that opened together on a site.

    ``owners`` is the rule of the route that owns the incidents' connections (None: the
    default approvers, ``EXALATE_APPROVERS``): they alone may acknowledge or snooze it.
    """

    id: int
    site: str
    channel: str
    owners: Rule | None
    created_at: datetime
    incidents: tuple[Incident, ...]
    card_ref: str | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    snoozed_by: str | None = None
    snoozed_until: datetime | None = None
    reminded_at: datetime | None = None
    version: int = 0

    @property
    def open(self) -> list[Incident]:
        return [incident for incident in self.incidents if incident.open]

    @property
    def resolved_at(self) -> datetime | None:
        """When its last incident resolved; None while any is open."""
        if not self.incidents or self.open:
            return None
        return max(i.resolved_at for i in self.incidents if i.resolved_at is not None)

    @property
    def opened_at(self) -> datetime:
        return min((i.opened_at for i in self.incidents), default=self.created_at)

    def snoozed(self, now: datetime) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > now


@dataclass(frozen=True, slots=True)
class Opening:
    """An incident to open, where its card goes, and who owns it (the route that owns
    the connection's incoming project; None: the default approvers)."""

    condition: Condition
    channel: str
    owners: Rule | None


SNOOZES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
"""The snoozes a card offers, by the value its button carries."""


@dataclass(frozen=True, slots=True)
class SiteView:
    """A site as its last poll saw it, kept for ``/exalate health`` and App Home on every
    replica: its connections (name and status as Exalate spells it), its queues' sizes,
    the queues the node has no endpoint for, and whether the node answered."""

    site: str
    observed_at: datetime
    reachable: bool = True
    trouble: str | None = None
    connections: tuple[tuple[str, str], ...] = ()
    queues: tuple[tuple[str, int], ...] = ()
    unwatched: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "reachable": self.reachable,
                "trouble": self.trouble,
                "connections": [list(pair) for pair in self.connections],
                "queues": dict(self.queues),
                "unwatched": list(self.unwatched),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, site: str, observed_at: datetime, text: str) -> SiteView:
        data = json.loads(text)
        return cls(
            site=site,
            observed_at=observed_at,
            reachable=bool(data.get("reachable", True)),
            trouble=data.get("trouble"),
            connections=tuple((str(n), str(s)) for n, s in data.get("connections", ())),
            queues=tuple((str(q), int(n)) for q, n in data.get("queues", {}).items()),
            unwatched=tuple(data.get("unwatched", ())),
        )
