"""App Home: a dashboard published each time someone opens the bot's Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncBoltContext

from bot.service import Listings
from handlers import blocks
from handlers.context import listings_in


async def dashboard(listings: Listings, user: str) -> blocks.Json:
    """The Home view for ``user``: database reads, plus a group lookup for approvers."""
    shown = blocks.HOME_LIST_MAX
    return blocks.home_view(
        viewer=user,
        now=listings.clock(),
        mine=await listings.mine(user, shown),
        awaiting_me=await listings.awaiting_decision(user, shown),
        invitations=await listings.invitations(shown),
        accepted=await listings.recently_accepted(shown),
    )


async def home_opened(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """Publish the dashboard when someone opens the Home tab (not the Messages tab)."""
    if event.get("tab") == "home":
        view = await dashboard(listings_in(context), event["user"])
        await context.client.views_publish(user_id=event["user"], view=view)
