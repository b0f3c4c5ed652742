"""Options for the project select when Jira has more projects than a static select holds."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext

from bot.cache import CacheUnavailable, TimedCache
from bot.service import ConnectionService, JiraProject, Site
from handlers import blocks
from handlers.context import service_in
from handlers.guard import SLACK_BUDGET_SECONDS
from handlers.payloads import draft_from_view, form_site

# A query that matches nothing in a list older than this reads Jira's list again: the
# project may have been created since.
UNMATCHED_MAX_AGE = 10.0


async def project_options(
    ack: AsyncAck, payload: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The projects of the form's site matching what the person typed so far, within
    Slack's budget. Only that site's Jira is asked; with no site chosen yet there is
    nothing to offer (the Site select above is required)."""
    options: list[blocks.Json] = []
    site = _site_of(service_in(context), payload.get("view") or {})
    try:
        if site is not None:
            async with asyncio.timeout(SLACK_BUDGET_SECONDS):
                options = await matching(site.projects, payload.get("value") or "")
    except (CacheUnavailable, TimeoutError):
        pass  # nothing to offer in time: the person types on, and Slack asks again
    await ack(options=options)


def _site_of(service: ConnectionService, view: blocks.Json) -> Site | None:
    """The site chosen in the form (its Site select), or the one it was opened for."""
    name = ""
    with contextlib.suppress(KeyError, TypeError):
        name = draft_from_view(view).site
    return service.sites.chosen(name or form_site(view))


async def matching(cache: TimedCache[list[JiraProject]], query: str) -> list[blocks.Json]:
    """Options for ``query`` from the cached list, or from a fresh one if nothing matches."""
    listed = await cache.current(wait=SLACK_BUDGET_SECONDS)
    options = blocks.project_options(listed, query)
    if not options:
        recent = cache.now() - UNMATCHED_MAX_AGE
        listed = await cache.get_since(recent, wait=SLACK_BUDGET_SECONDS)
        options = blocks.project_options(listed, query)
    return options
