"""Options for the project select when Jira has more projects than a static select holds."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.cache import CacheUnavailable
from bot.service import ConnectionService
from handlers import blocks
from handlers.budget import SLACK_BUDGET_SECONDS
from handlers.ids import Action
from handlers.inflight import InFlight

# A query that matches nothing in a list older than this reads Jira's list again: the
# project may have been created since.
UNMATCHED_MAX_AGE = 10.0


def register(app: AsyncApp, service: ConnectionService, inflight: InFlight) -> None:
    """Install the options loader."""

    async def project_options(ack: AsyncAck, payload: dict[str, Any]) -> None:
        query = payload.get("value") or ""
        cache = service.projects
        options: list[blocks.Json] = []
        try:
            async with asyncio.timeout(SLACK_BUDGET_SECONDS):
                listed = await cache.current(wait=SLACK_BUDGET_SECONDS)
                options = blocks.project_options(listed, query)
                if not options:
                    recent = cache.now() - UNMATCHED_MAX_AGE
                    listed = await cache.get_since(recent, wait=SLACK_BUDGET_SECONDS)
                    options = blocks.project_options(listed, query)
        except (CacheUnavailable, TimeoutError):
            pass  # nothing to offer in time: the person types on, and Slack asks again
        await ack(options=options)

    app.options(Action.PROJECT.value)(inflight.track(project_options))
