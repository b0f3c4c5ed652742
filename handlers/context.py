"""How the parts the composition root built reach module-level listeners: through Bolt's
per-request ``context``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.service import ConnectionService, HealthWatch, InvitationCodes, Listings, Services
from handlers.blocks.text import NAMING_SITES
from handlers.shared_status import SharedStatus

# The keys under which ``BotParts`` leaves the bot's parts in Bolt's context.
SERVICE = "service"
CODES = "codes"
LISTINGS = "listings"
SHARED_STATUS = "shared_status"
HEALTH = "health"


class BotParts(AsyncMiddleware):
    """A Bolt middleware that puts the bot's parts in every request's context, and the
    app's one ``SharedStatus``, which listeners share among concurrent status asks.

    Listeners are plain module-level functions, so they can be imported and tested
    alone; Bolt hands each its ``context``, and this is how the parts the composition
    root built reach them.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._shared_status = SharedStatus()

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],  # Bolt passes it by this name
    ) -> BoltResponse | None:
        NAMING_SITES.set(self._services.sites.several)  # for what the listener draws
        req.context[SERVICE] = self._services.requests
        req.context[CODES] = self._services.codes
        req.context[LISTINGS] = self._services.listings
        req.context[SHARED_STATUS] = self._shared_status
        req.context[HEALTH] = self._services.health
        return await next()


def service_in(context: AsyncBoltContext) -> ConnectionService:
    """The request use cases ``BotParts`` put in the context."""
    return cast("ConnectionService", context[SERVICE])


def codes_in(context: AsyncBoltContext) -> InvitationCodes:
    """The invitation code's use cases (resend, paste, show)."""
    return cast("InvitationCodes", context[CODES])


def listings_in(context: AsyncBoltContext) -> Listings:
    """What people read: status, App Home, histories."""
    return cast("Listings", context[LISTINGS])


def shared_status_in(context: AsyncBoltContext) -> SharedStatus:
    """The app's one ``SharedStatus``, which ``BotParts`` made."""
    return cast(SharedStatus, context[SHARED_STATUS])


def health_in(context: AsyncBoltContext) -> HealthWatch | None:
    """Sync health, where this bot watches it (None in tests of other rules)."""
    return cast("HealthWatch | None", context.get(HEALTH))
