"""Options for the project select when Jira has more projects than a static select holds."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.cache import CacheUnavailable
from bot.service import ConnectionService
from handlers import blocks
from handlers.ids import Action
from handlers.inflight import InFlight

# Options must be answered within 3 s; only a cold cache waits on Jira, for part of that.
OPTIONS_BUDGET_SECONDS = 2.0


def register(app: AsyncApp, service: ConnectionService, inflight: InFlight) -> None:
    """Install the options loader."""

    async def project_options(ack: AsyncAck, payload: dict[str, Any]) -> None:
        try:
            projects = await service.projects.current(wait=OPTIONS_BUDGET_SECONDS)
        except CacheUnavailable:
            await ack(options=[])
            return
        await ack(options=blocks.project_options(projects, payload.get("value") or ""))

    app.options(Action.PROJECT.value)(inflight.track(project_options))
