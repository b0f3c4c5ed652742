"""App Home: a dashboard published each time someone opens the bot's Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncBoltContext

from bot.service import ConnectionService
from handlers import blocks
from handlers.context import service_in


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


async def home_opened(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """Publish the dashboard when someone opens the Home tab (not the Messages tab)."""
    if event.get("tab") == "home":
        view = await dashboard(service_in(context), event["user"])
        await context.client.views_publish(user_id=event["user"], view=view)
