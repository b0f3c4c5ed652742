"""What one poll of a node means for its incidents: the rules, without I/O.

A condition opens an incident once it is seen on ``OPEN_AFTER`` polls in a row
(``NODE_DOWN_AFTER`` for the node itself), and an open incident resolves once its
condition is missed on ``RESOLVE_AFTER`` polls in a row: one poll's blip opens nothing
and closes nothing, as absence needs repetition everywhere in this bot. What the rules
remember between polls is a ``WatchState``, stored per site so that a restart or another
replica taking over goes on counting where the last one stopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.exalate.models import Connection, ConnectionState, SyncQueue
from bot.health.model import Condition, Kind, NodeTrouble, incident_key

OPEN_AFTER = 2
NODE_DOWN_AFTER = 3
RESOLVE_AFTER = 2


@dataclass
class WatchState:
    """What the watch of one site remembers between polls."""

    seen: dict[str, int] = field(default_factory=dict)
    """Polls in a row each condition was seen, by incident key."""
    missed: dict[str, int] = field(default_factory=dict)
    """Polls in a row each open incident's condition was not seen, by incident key."""
    active: set[str] = field(default_factory=set)
    """Connections seen Active: their deactivation is news; a connection found
    deactivated, never seen active, was most likely paused on purpose."""
    samples: list[tuple[datetime, dict[str, int]]] = field(default_factory=list)
    """Queue sizes by poll, the oldest kept just older than the window."""
    failures: int = 0
    """Failed polls in a row."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "seen": self.seen,
                "missed": self.missed,
                "active": sorted(self.active),
                "samples": [[at.isoformat(), sizes] for at, sizes in self.samples],
                "failures": self.failures,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> WatchState:
        data = json.loads(text)
        return cls(
            seen={str(k): int(v) for k, v in data.get("seen", {}).items()},
            missed={str(k): int(v) for k, v in data.get("missed", {}).items()},
            active=set(data.get("active", ())),
            samples=[
                (datetime.fromisoformat(at), dict(sizes)) for at, sizes in data.get("samples", ())
            ],
            failures=int(data.get("failures", 0)),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a poll decides: incidents to open, open ones whose condition still holds (as
    it is now), and open ones to resolve (by key)."""

    opening: list[Condition] = field(default_factory=list)
    holding: list[Condition] = field(default_factory=list)
    resolving: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Poll:
    """What one successful poll of a site read. A queue missing from ``queues`` could not
    be read this time (or the node has no such endpoint): nothing is concluded about it."""

    site: str
    at: datetime
    connections: list[Connection]
    complete: bool
    queues: Mapping[SyncQueue, int]


@dataclass(frozen=True, slots=True)
class QueueRule:
    """A queue is stuck above ``threshold`` when it is not lower than ``window`` ago."""

    threshold: int
    window: timedelta


def assess(state: WatchState, poll: Poll, open_keys: set[str], rule: QueueRule) -> Verdict:
    """The verdict of a poll that read the site, ``state`` updated in place."""
    state.failures = 0
    now_seen = _connection_conditions(state, poll, open_keys) + _queue_conditions(state, poll, rule)
    unknown = _unknown(poll, open_keys)
    return _count(state, now_seen, open_keys, unknown, poll.site)


def assess_failure(
    state: WatchState, site: str, trouble: NodeTrouble, open_keys: set[str]
) -> Verdict:
    """The verdict of a poll that could not read the site. Nothing else is known, so no
    other incident opens or resolves while the node is down."""
    state.failures += 1
    node = Condition(site, Kind.NODE, "", trouble.value)
    if node.key in open_keys:
        state.missed.pop(node.key, None)
        return Verdict(holding=[node])
    state.seen[node.key] = state.failures
    if state.failures >= NODE_DOWN_AFTER:
        return Verdict(opening=[node])
    return Verdict()


def _count(
    state: WatchState,
    conditions: list[Condition],
    open_keys: set[str],
    unknown: set[str],
    site: str,
) -> Verdict:
    """Count each condition seen and each open incident missed; the node's incident
    resolves at the first poll that reads the site."""
    keys = {c.key for c in conditions}
    node_key = incident_key(site, Kind.NODE, "")
    state.seen = {
        c.key: state.seen.get(c.key, 0) + 1 for c in conditions
    }  # a condition not seen this poll starts again from zero
    verdict = Verdict()
    for condition in conditions:
        if condition.key in open_keys:
            state.missed.pop(condition.key, None)
            verdict.holding.append(condition)
        elif state.seen[condition.key] >= OPEN_AFTER:
            verdict.opening.append(condition)
    for key in sorted(open_keys - keys - unknown):
        state.missed[key] = state.missed.get(key, 0) + 1
        if state.missed[key] >= RESOLVE_AFTER or key == node_key:
            verdict.resolving.append(key)
    state.missed = {
        k: v for k, v in state.missed.items() if k in open_keys and k not in verdict.resolving
    }
    return verdict


def _connection_conditions(state: WatchState, poll: Poll, open_keys: set[str]) -> list[Condition]:
    """Connections in Error, or Deactivated after being seen Active (or already an
    incident); the Active ones are remembered."""
    found = []
    for connection in poll.connections:
        condition = Condition(poll.site, Kind.CONNECTION, connection.name, connection.status or "")
        state_now = connection.state
        if state_now is ConnectionState.ERROR or (
            state_now is ConnectionState.DEACTIVATED
            and (connection.name in state.active or condition.key in open_keys)
        ):
            found.append(condition)
    listed = {c.name for c in poll.connections}
    active_now = {c.name for c in poll.connections if c.state is ConnectionState.ACTIVE}
    kept = state.active & listed if poll.complete else state.active
    state.active = kept | active_now
    return found


def _queue_conditions(state: WatchState, poll: Poll, rule: QueueRule) -> list[Condition]:
    """Queues above the threshold and not lower than ``rule.window`` ago; the sizes are
    kept as samples, the oldest one just older than the window."""
    found = []
    before = next(
        (sizes for at, sizes in reversed(state.samples) if at <= poll.at - rule.window), None
    )
    for queue, size in poll.queues.items():
        earlier = None if before is None else before.get(queue.value)
        if size > rule.threshold and earlier is not None and size >= earlier:
            found.append(Condition(poll.site, Kind.QUEUE, queue.value, str(size)))
    state.samples.append((poll.at, {q.value: s for q, s in poll.queues.items()}))
    oldest_needed = max(
        (i for i, (at, _) in enumerate(state.samples) if at <= poll.at - rule.window), default=0
    )
    state.samples = state.samples[oldest_needed:]
    return found


def _unknown(poll: Poll, open_keys: Iterable[str]) -> set[str]:
    """Open incidents this poll cannot judge: a queue it could not read, a connection
    missing from a list that is not complete."""
    unread = {incident_key(poll.site, Kind.QUEUE, q.value) for q in SyncQueue} - {
        incident_key(poll.site, Kind.QUEUE, q.value) for q in poll.queues
    }
    if poll.complete:
        return unread & set(open_keys)
    listed = {incident_key(poll.site, Kind.CONNECTION, c.name) for c in poll.connections}
    prefix = incident_key(poll.site, Kind.CONNECTION, "")
    unlisted = {k for k in open_keys if k.startswith(prefix) and k not in listed}
    return (unread & set(open_keys)) | unlisted
