"""App Home: a dashboard published each time someone opens the bot's Home tab."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.model import Status
from bot.service import ConnectionService
from handlers import blocks
from handlers.inflight import InFlight

log = logging.getLogger(__name__)


def register(app: AsyncApp, service: ConnectionService, inflight: InFlight) -> None:
    """Install the ``app_home_opened`` listener."""

    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") != "home":
            return
        user = event["user"]
        try:
            approver = await service.policy.is_approver(user)
        except Exception:  # a group lookup that fails hides one section, not the page
            approver = False
        pending = await service.pending()
        view = blocks.home_view(
            viewer=user,
            now=service.clock(),
            mine=await service.mine(user),
            awaiting_me=[
                r for r in pending if r.status is Status.PENDING_APPROVAL and r.requester != user
            ]
            if approver
            else None,
            invitations=[r for r in pending if r.status is Status.INVITED],
            accepted=await service.recently_accepted(),
        )
        await client.views_publish(user_id=user, view=view)

    app.event("app_home_opened")(inflight.track(home_opened))
