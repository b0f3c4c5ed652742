"""One Exalate node ("site") as the use cases see it, and the set of them.

A request is made for one site and stays with it: its project and name checks, its
create call and the poll that follows its invitation all go to that site's client and
caches, so a site that is slow or down slows nobody else. Sites are built once, at the
composition root; the use cases look up the request's site here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from bot.approvals.errors import ApprovalError, NotAllowed
from bot.approvals.model import ForeignInvitation
from bot.cache import TimedCache
from bot.exalate import Connection
from bot.ports import ExalatePort, JiraProject
from bot.site_config import SiteConfig

MAX_BACKOFF_FACTOR = 16  # while a site is down, poll it at most every 16 intervals


class UnknownSite(ApprovalError):
    """A site name no configured site has."""


class SiteRetired(NotAllowed):
    """A retired site: it takes no new request and creates no connection."""

    def __init__(self, site: str) -> None:
        super().__init__(
            f"The site {site} is retired: it takes no new requests or connections; its "
            "invitations are still followed."
        )


@dataclass(frozen=True)
class CreateRefusal:
    """Exalate refused the site's last create call for the bot's credentials or its Jira
    user's rights (401/403). Polls cannot see it (the list reads fine while every create
    is refused), so it is kept until a create succeeds."""

    status: int | None
    at: datetime
    credentials: str
    """The setting to fix, in words: the token's variable, or the basic-auth user."""

    def as_json(self) -> dict[str, object]:
        return {"status": self.status, "at": self.at.isoformat(), "credentials": self.credentials}


@dataclass
class SiteHealth:
    """What the last poll or probe learnt of the site's Jira: for ``/readyz``."""

    reachable: bool | None = None
    """None until Jira was first asked."""
    last_answer: datetime | None = None
    last_error: str | None = None
    """The kind of the last failure (``ExalateTimeout``, …, or whatever else made a poll
    fail), while it lasts."""

    def as_json(self) -> dict[str, object]:
        return {
            "reachable": self.reachable,
            "last_answer": self.last_answer.isoformat() if self.last_answer else None,
            "last_error": self.last_error,
        }


@dataclass
class Backoff:
    """Polls skipped while a site fails: 1, 3, 7, … up to ``MAX_BACKOFF_FACTOR`` - 1
    intervals, so an outage neither floods that Jira nor delays any other site."""

    failures: int = 0
    _to_skip: int = 0

    def due(self) -> bool:
        """Whether to poll on this tick (counting a skipped one)."""
        if self._to_skip:
            self._to_skip -= 1
            return False
        return True

    def failed(self) -> None:
        self.failures += 1
        self._to_skip = min(2**self.failures, MAX_BACKOFF_FACTOR) - 1

    def succeeded(self) -> None:
        self.failures, self._to_skip = 0, 0


@dataclass
class SeenInExalate:
    """What the site's last complete connection list showed that no request created:
    shown by ``/exalate status`` without asking Jira again."""

    foreign_pending: tuple[ForeignInvitation, ...] = ()
    listed_at: datetime | None = None
    pending_since: dict[str, datetime] = field(default_factory=dict)
    """When each of them was first seen pending, by connection id."""


@dataclass
class Site:
    """One node: its settings, its client, its caches and what the bot knows of it."""

    config: SiteConfig
    exalate: ExalatePort
    projects: TimedCache[list[JiraProject]]
    """The projects open for incoming sync on this site (its allow-list applied)."""
    connections: TimedCache[list[Connection]]
    health: SiteHealth = field(default_factory=SiteHealth)
    backoff: Backoff = field(default_factory=Backoff)
    seen: SeenInExalate = field(default_factory=SeenInExalate)
    create_refused: CreateRefusal | None = None
    """The last create call's refusal for the credentials, until a create succeeds: polls
    cannot see it (the list reads fine while every create is refused)."""

    def health_json(self) -> dict[str, object]:
        """The site as ``/readyz`` shows it; ``create_refused`` only while there is one."""
        shown = self.health.as_json()
        if self.create_refused is not None:
            shown["create_refused"] = self.create_refused.as_json()
        return shown

    @classmethod
    def of(cls, config: SiteConfig, exalate: ExalatePort, *, list_ttl: float) -> Site:
        """The site with its lists cached for ``list_ttl`` seconds; the project list is
        what its allow-list lets people choose, all the form offers."""

        async def allowed_projects() -> list[JiraProject]:
            return [
                JiraProject(p.key, p.name)
                for p in await exalate.list_projects()
                if config.project_allowed(p.key)
            ]

        async def connections() -> list[Connection]:
            return (await exalate.connection_list()).results

        return cls(
            config,
            exalate,
            projects=TimedCache(allowed_projects, ttl=list_ttl),
            connections=TimedCache(connections, ttl=list_ttl),
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def assisted(self) -> bool:
        """Whether approvers create its connections in the console (no create call)."""
        return self.config.initiation == "assisted"

    def warm_up(self) -> None:
        """Start loading the lists in the background, ahead of the next submission."""
        self.projects.refresh_soon()
        self.connections.refresh_soon()


class Sites:
    """The configured sites, by name, in the order the file gives them."""

    def __init__(self, sites: list[Site]) -> None:
        if not sites:
            raise ValueError("at least one site")
        self._by_name = {site.name: site for site in sites}

    def __iter__(self) -> Iterator[Site]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __getitem__(self, name: str) -> Site:
        """The site called ``name``; UnknownSite says which there are."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownSite(
                f"There is no site {name!r}; the sites are {', '.join(self._by_name)}."
            ) from None

    @property
    def several(self) -> bool:
        """Whether there is more than one, so everything shown names the site."""
        return len(self._by_name) > 1

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def open(self) -> list[Site]:
        """The sites that take new requests (not retired)."""
        return [site for site in self if not site.config.retired]

    def taking_requests(self, name: str) -> Site:
        """The site called ``name`` if it takes new requests; else UnknownSite or
        SiteRetired, each saying why."""
        site = self[name]
        if site.config.retired:
            raise SiteRetired(site.name)
        return site

    def chosen(self, name: str) -> Site | None:
        """The site a form is for: ``name`` if it takes requests, else the only site
        that does, else None (the person chooses in the form)."""
        open_sites = self.open()
        if name:
            return next((site for site in open_sites if site.name == name), None)
        return open_sites[0] if len(open_sites) == 1 else None
