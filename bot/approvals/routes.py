"""Who decides a request: the first route matching its site and incoming project, or,
when none does, the default approvers (``EXALATE_APPROVERS``) in the default channel.

A request keeps the rule it was made under (``Rule``, stored with it): editing the
routes changes who decides new requests only, so nobody loses or gains a decision
already asked of someone else.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may decide a request, how many of them must approve, and where its card goes.

    ``approvers`` are user ids (``U…``/``W…``) and user-group ids (``S…``), checked at
    every click. ``channel`` None is the default channel. Past ``escalate_after`` without
    a decision, ``escalate_to`` may decide too.
    """

    approvers: tuple[str, ...]
    approvals: int = 1
    channel: str | None = None
    escalate_after: timedelta | None = None
    escalate_to: tuple[str, ...] = ()
    route: int | None = None
    """The route's number in the file (1 = the first ``[[routes]]``); None: the default."""

    def deciders(self, *, escalated: bool) -> tuple[str, ...]:
        """The ids that may decide: the approvers and, once escalated, the escalation
        group too."""
        if not escalated:
            return self.approvers
        return tuple(dict.fromkeys((*self.approvers, *self.escalate_to)))

    def to_json(self) -> str:
        """The snapshot a request keeps."""
        return json.dumps(
            {
                "route": self.route,
                "approvers": list(self.approvers),
                "approvals": self.approvals,
                "channel": self.channel,
                "escalate_after": (
                    None if self.escalate_after is None else self.escalate_after.total_seconds()
                ),
                "escalate_to": list(self.escalate_to),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Rule:
        data = json.loads(text)
        after = data.get("escalate_after")
        return cls(
            approvers=tuple(data["approvers"]),
            approvals=int(data.get("approvals", 1)),
            channel=data.get("channel"),
            escalate_after=None if after is None else timedelta(seconds=float(after)),
            escalate_to=tuple(data.get("escalate_to", ())),
            route=data.get("route"),
        )


def card_channel(rule: Rule | None, default: str) -> str:
    """Where the card of a request made under ``rule`` goes: its route's channel, or
    ``default`` (``EXALATE_APPROVAL_CHANNEL``)."""
    return rule.channel if rule is not None and rule.channel else default


@dataclass(frozen=True, slots=True)
class Route:
    """One ``[[routes]]`` entry: the requests it matches, and the rule they get."""

    rule: Rule
    sites: tuple[str, ...] = ()
    """Site names; empty: every site."""
    projects: tuple[str, ...] = ()
    """Incoming project keys or ``*``-patterns, upper case; empty: every project."""

    @property
    def number(self) -> int:
        assert self.rule.route is not None
        return self.rule.route

    def matches(self, site: str, project: str) -> bool:
        return (not self.sites or site in self.sites) and (
            not self.projects
            or any(fnmatch.fnmatchcase(project.upper(), pattern) for pattern in self.projects)
        )

    def covers(self, other: Route) -> bool:
        """Whether every request ``other`` matches is matched here first: ``other``,
        coming later, can never decide anything (a pattern here covers a key or a
        narrower pattern there)."""
        sites = not self.sites or (bool(other.sites) and set(other.sites) <= set(self.sites))
        if not self.projects:
            return sites
        if not other.projects:
            return False
        return sites and all(
            any(fnmatch.fnmatchcase(theirs, mine) for mine in self.projects)
            for theirs in other.projects
        )


@dataclass(frozen=True, slots=True)
class Routes:
    """The routes in file order, and the default rule for requests none matches."""

    routes: tuple[Route, ...]
    default: Rule

    def rule_for(self, site: str, project: str) -> Rule:
        """The rule of the first route matching; the default when none does."""
        for route in self.routes:
            if route.matches(site, project):
                return route.rule
        return self.default

    def route_for(self, site: str, project: str) -> Route | None:
        return next((r for r in self.routes if r.matches(site, project)), None)

    def shadowed(self) -> list[tuple[Route, Route]]:
        """(earlier, later) pairs where the later route can never match first."""
        return [
            (earlier, later)
            for index, later in enumerate(self.routes)
            for earlier in self.routes[:index]
            if earlier.covers(later)
        ]

    @property
    def channels(self) -> tuple[str, ...]:
        """Every channel a route sends cards to, in file order, without repeats."""
        found = [r.rule.channel for r in self.routes if r.rule.channel]
        return tuple(dict.fromkeys(found))

    @property
    def everyone(self) -> tuple[str, ...]:
        """Every approver id, of the default and of each route, escalation included."""
        rules = [self.default, *(r.rule for r in self.routes)]
        return tuple(dict.fromkeys(i for rule in rules for i in rule.deciders(escalated=True)))

    @property
    def groups(self) -> tuple[str, ...]:
        """Every user group a route or the default names, without repeats."""
        return tuple(i for i in self.everyone if i.startswith("S"))
