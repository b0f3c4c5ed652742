"""The checks of a submitted form that need the live Jira and the database, run side by
side within the time Slack leaves before the form must be answered."""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from bot.approvals.model import RequestFields, same_name
from bot.approvals.rules import Field
from bot.cache import CacheUnavailable, TimedCache
from bot.exalate import ExalateError
from bot.ports import RequestStore
from bot.service.site import Site, Sites

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a form submission may wait on Jira before telling the person to try again;
# Slack closes the window at 3 s and the rest of the work needs some of it.
LOOKUP_BUDGET_SECONDS = 1.5


def name_in_open_request(name: str) -> str:
    return f"Another open request already uses the connection name {name}; choose another name."


class LiveChecks:
    """Is the project there and open for sync on the request's site, is the connection
    name free there. Only that site's Jira is asked."""

    def __init__(self, repository: RequestStore, sites: Sites) -> None:
        self._repository = repository
        self._sites = sites

    async def errors(self, fields: RequestFields) -> dict[Field, str]:
        """The checks that need Jira and the database, run side by side, all of them
        within ``LOOKUP_BUDGET_SECONDS``."""
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
        if not site.config.project_allowed(fields.project_key):
            errors[Field.PROJECT] = (
                f"{fields.project_key} is not open for incoming sync here; "
                "choose one of the projects offered, or ask an Exalate admin."
            )
        elif projects is None:
            errors[Field.PROJECT] = (
                "Jira did not answer in time to check the project; submit again."
            )
        elif fields.project_key not in {project.key for project in projects}:
            # The list may predate the project: Jira is asked for this key before refusing.
            exists = await self._project_exists(site, fields.project_key, deadline)
            if exists is None:
                errors[Field.PROJECT] = (
                    "Jira did not answer in time to check the project; submit again."
                )
            elif not exists:
                errors[Field.PROJECT] = f"Jira has no project with the key {fields.project_key}."
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
