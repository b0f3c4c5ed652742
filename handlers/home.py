"""App Home: a dashboard published each time someone opens the bot's Home tab."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.service import ConnectionService
from handlers import blocks
from handlers.inflight import InFlight

log = logging.getLogger(__name__)


async def dashboard(service: ConnectionService, user: str) -> blocks.Json:
    """The Home view for ``user``: database reads, plus a group lookup for approvers."""
    shown = blocks.HOME_LIST_MAX
    return blocks.home_view(
        viewer=user,
        now=service.clock(),
        mine=await service.mine(user, shown),
        awaiting_me=await service.awaiting_decision(user, shown),
        invitations=await service.invitations(shown),
        accepted=await service.recently_accepted(shown),
    )


def register(app: AsyncApp, service: ConnectionService, inflight: InFlight) -> None:
    """Install the ``app_home_opened`` listener."""

    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") == "home":
            view = await dashboard(service, event["user"])
            await client.views_publish(user_id=event["user"], view=view)

    app.event("app_home_opened")(inflight.track(home_opened))
