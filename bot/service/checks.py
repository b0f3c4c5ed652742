"""The checks of a submitted form that need the live Jira and the database, run side by
side within the time Slack leaves before the form must be answered."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from bot.approvals.limits import RefusedInJira, Submitter
from bot.approvals.model import RequestFields, same_name
from bot.approvals.rules import PROJECT_KEY, Field
from bot.cache import CacheUnavailable, TimedCache
from bot.exalate import ExalateError
from bot.ports import JiraProject, RequestStore
from bot.service.site import Site, Sites

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a form submission may wait on Jira before telling the person to try again;
# Slack closes the window at 3 s and the rest of the work needs some of it.
LOOKUP_BUDGET_SECONDS = 1.5
# A key the cached project list lacks costs a call to Jira (with the bot's own, admin
# credentials), so what Jira said is kept, and the calls are counted.
UNLISTED_TTL = 60.0
"""Seconds "no such project" is believed: as long as the project list is kept, after
which the list itself shows a project created since."""
UNLISTED_MAX = 1000
"""Keys a site remembers as missing; the oldest is forgotten first."""
UNLISTED_LOOKUPS = 30
"""Calls about keys the list lacks that a site makes in ``UNLISTED_WINDOW`` seconds, for
everyone together: a new project is rare, a flood of made-up keys is not."""
UNLISTED_WINDOW = 60.0
JIRA_SLOW = "Jira did not answer in time to check the project; submit again."


def name_in_open_request(name: str) -> str:
    return f"Another open request already uses the connection name {name}; choose another name."


def no_project(key: str) -> str:
    return f"Jira has no project with the key {key}."


def too_many_refused(per_hour: int, free_at: datetime) -> str:
    return (
        f"Jira refused {per_hour} of your submissions in the last hour, the most one person "
        f"may; you can submit again at {free_at:%H:%M} UTC. Your answers are kept."
    )


@dataclass
class Unlisted:
    """One site's memory of the keys its project list lacks: those Jira said it has no
    project for, and when Jira was last asked about one."""

    missing: OrderedDict[str, float] = field(default_factory=OrderedDict)
    asked: deque[float] = field(default_factory=deque)

    def said_missing(self, key: str, now: float) -> bool:
        """Whether Jira said, less than ``UNLISTED_TTL`` ago, that it has no ``key``."""
        said = self.missing.get(key)
        if said is not None and now - said >= UNLISTED_TTL:
            del self.missing[key]
            return False
        return said is not None

    def remember_missing(self, key: str, now: float) -> None:
        self.missing.pop(key, None)
        self.missing[key] = now
        while len(self.missing) > UNLISTED_MAX:
            self.missing.popitem(last=False)

    def may_ask(self, now: float) -> bool:
        """Whether Jira may be asked about one more key now; counts the call if so."""
        while self.asked and self.asked[0] <= now - UNLISTED_WINDOW:
            self.asked.popleft()
        if len(self.asked) >= UNLISTED_LOOKUPS:
            return False
        self.asked.append(now)
        return True


class LiveChecks:
    """Is the project there and open for sync on the request's site, is the connection
    name free there. Only that site's Jira is asked."""

    def __init__(self, repository: RequestStore, sites: Sites) -> None:
        self._repository = repository
        self._sites = sites
        self._unlisted: dict[str, Unlisted] = {}
        self._refused = RefusedInJira()

    async def errors(
        self, fields: RequestFields, submitter: Submitter | None = None
    ) -> dict[Field, str]:
        """The checks that need Jira and the database, run side by side, all of them
        within ``LOOKUP_BUDGET_SECONDS``.

        Every submission that reaches Jira counts toward its ``submitter``'s hourly
        limit: a stored one in the database, a refused one here. One who has had
        ``per_hour`` refusals in the hour is refused before Jira is asked.
        """
        if submitter is not None and (free_at := self._refused.free_at(submitter)):
            log.warning("submission_refused by=%s reason=refused_in_jira", submitter.requester)
            return {Field.NAME: too_many_refused(submitter.per_hour, free_at)}
        errors = await self._errors(fields)
        if errors and submitter is not None:
            self._refused.count(submitter)
        return errors

    async def _errors(self, fields: RequestFields) -> dict[Field, str]:
        site = self._sites[fields.site]  # one that takes requests: submit checked it
        deadline = asyncio.get_running_loop().time() + LOOKUP_BUDGET_SECONDS
        projects_lookup = self._lookup(site, site.projects)
        # Connections appear in the Exalate console at any time: the name is checked
        # against a list asked for after the submission arrived (shared by submissions
        # arriving together), never an older one.
        connections_lookup = self._lookup_since(site, site.connections, site.connections.now())
        projects, connections, name_open = await asyncio.gather(
            projects_lookup,
            connections_lookup,
            self._repository.name_is_open(fields.connection_name, site.name),
        )
        errors: dict[Field, str] = {}
        if problem := await self._project_problem(site, fields.project_key, projects, deadline):
            errors[Field.PROJECT] = problem
        if name_open:
            errors[Field.NAME] = name_in_open_request(fields.connection_name)
        elif connections is None:
            errors[Field.NAME] = (
                "Exalate did not answer in time to check the connection name; submit again."
            )
        elif any(same_name(connection.name, fields.connection_name) for connection in connections):
            errors[Field.NAME] = (
                f"Exalate already has a connection named {fields.connection_name}; "
                "choose another name."
            )
        return errors

    async def _project_problem(
        self, site: Site, key: str, projects: list[JiraProject] | None, deadline: float
    ) -> str | None:
        """What is wrong with the project ``key`` on ``site``, given its cached list."""
        if not site.config.project_allowed(key):
            return (
                f"{key} is not open for incoming sync here; "
                "choose one of the projects offered, or ask an Exalate admin."
            )
        if projects is None:
            return JIRA_SLOW
        if key in {project.key for project in projects}:
            return None
        # The list may predate the project: Jira is asked for this key before refusing.
        return await self._unlisted_project(site, key, deadline)

    async def _unlisted_project(self, site: Site, key: str, deadline: float) -> str | None:
        """What is wrong with ``key``, which the cached list lacks, asking Jira only
        when it has not said already, and only as often as ``UNLISTED_LOOKUPS`` allows."""
        if not PROJECT_KEY.fullmatch(key):  # the rules refused it: never part of a URL
            return no_project(key)
        memory = self._unlisted.setdefault(site.name, Unlisted())
        if memory.said_missing(key, site.projects.now()):
            return no_project(key)
        if not memory.may_ask(site.projects.now()):
            log.warning("project_lookups_spent site=%s", site.name)
            return (
                f"Jira's list of projects does not have {key}; if the project is new, "
                "submit again in a minute."
            )
        exists = await self._project_exists(site, key, deadline)
        if exists is None:
            return JIRA_SLOW
        if not exists:
            memory.remember_missing(key, site.projects.now())
            return no_project(key)
        return None

    @staticmethod
    async def _project_exists(site: Site, key: str, deadline: float) -> bool | None:
        """Whether Jira has the project ``key`` now; None when it does not say before
        ``deadline``. A project found so is newer than the cached list: it is refreshed."""
        try:
            async with asyncio.timeout_at(deadline):
                found = await site.exalate.get_project(key)
        except (TimeoutError, ExalateError) as error:
            kind = type(error).__name__
            log.warning("project_lookup_unavailable site=%s kind=%s", site.name, kind)
            return None
        if found is not None:
            site.projects.invalidate()
            site.projects.refresh_soon()
        return found is not None

    @staticmethod
    async def _lookup(site: Site, cache: TimedCache[T]) -> T | None:
        """Whatever list ``cache`` holds (refreshed behind), or None within the budget."""
        try:
            return await cache.current(wait=LOOKUP_BUDGET_SECONDS)
        except CacheUnavailable as error:
            log.warning("lookup_unavailable site=%s reason=%s", site.name, error)
            return None

    @staticmethod
    async def _lookup_since(site: Site, cache: TimedCache[T], moment: float) -> T | None:
        """The list as asked for at or after ``moment``, or None within the budget."""
        try:
            return await cache.get_since(moment, wait=LOOKUP_BUDGET_SECONDS)
        except CacheUnavailable as error:
            log.warning("lookup_unavailable site=%s reason=%s", site.name, error)
            return None
