"""Options for the project select when Jira has more projects than a static select holds."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext

from bot.cache import CacheUnavailable, TimedCache
from bot.exalate import Project
from handlers import blocks
from handlers.context import service_in
from handlers.guard import SLACK_BUDGET_SECONDS

# A query that matches nothing in a list older than this reads Jira's list again: the
# project may have been created since.
UNMATCHED_MAX_AGE = 10.0


async def project_options(
    ack: AsyncAck, payload: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The projects matching what the person typed so far, within Slack's budget."""
    options: list[blocks.Json] = []
    try:
        async with asyncio.timeout(SLACK_BUDGET_SECONDS):
            options = await matching(service_in(context).projects, payload.get("value") or "")
    except (CacheUnavailable, TimeoutError):
        pass  # nothing to offer in time: the person types on, and Slack asks again
    await ack(options=options)


async def matching(cache: TimedCache[list[Project]], query: str) -> list[blocks.Json]:
    """Options for ``query`` from the cached list, or from a fresh one if nothing matches."""
    listed = await cache.current(wait=SLACK_BUDGET_SECONDS)
    options = blocks.project_options(listed, query)
    if not options:
        recent = cache.now() - UNMATCHED_MAX_AGE
        listed = await cache.get_since(recent, wait=SLACK_BUDGET_SECONDS)
        options = blocks.project_options(listed, query)
    return options
