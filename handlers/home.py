"""App Home: a dashboard published each time someone opens the bot's Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncBoltContext

from bot.service import HealthWatch, Listings
from handlers import blocks
from handlers.blocks.incidents import home_health
from handlers.context import health_in, listings_in

HOME_BLOCKS_MAX = 100
"""Slack's limit for a Home tab: sync health gets what the request lists leave of it."""


async def dashboard(
    listings: Listings, user: str, health: HealthWatch | None = None
) -> blocks.Json:
    """The Home view for ``user``: database reads, plus a group lookup for approvers;
    each site's sync health below the requests where ``health`` is watched."""
    shown = blocks.HOME_LIST_MAX
    view = blocks.home_view(
        viewer=user,
        now=listings.clock(),
        mine=await listings.mine(user, shown),
        awaiting_me=await listings.awaiting_decision(user, shown),
        invitations=await listings.invitations(shown),
        accepted=await listings.recently_accepted(shown),
    )
    if health is not None:
        overviews = await health.overview(listings.sites.names)
        view["blocks"] += home_health(overviews, HOME_BLOCKS_MAX - len(view["blocks"]))
    return view


async def home_opened(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """Publish the dashboard when someone opens the Home tab (not the Messages tab)."""
    if event.get("tab") == "home":
        view = await dashboard(listings_in(context), event["user"], health_in(context))
        await context.client.views_publish(user_id=event["user"], view=view)
