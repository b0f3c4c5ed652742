"""Telling people what became of a request: its card, its thread, the requester's DMs,
and the invitation code's private delivery.

Telling is best effort: a Slack failure is logged (by its reason code only) and counted,
and never undoes or blocks the change of state it reports, so the request always stays
in a state someone can finish from. The code's delivery is the exception that is
recorded: a refused DM keeps the code for Resend code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from bot.approvals.model import ConnectionRequest, Problem
from bot.metrics import Metrics
from bot.ports import DeliveryFailed, Notice, Notifier, RequestStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# A card post (with Slack's rate-limit retries) takes seconds; a claim older than this
# was left by a process that stopped mid-post.
CARD_CLAIM_LIFETIME = timedelta(minutes=10)


class Telling:
    """The notifier's calls, each made quietly, and the card posted exactly once."""

    def __init__(
        self,
        notifier: Notifier,
        store: RequestStore,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._notifier = notifier
        self._store = store
        self._metrics = metrics
        self._now = clock
        self.cards_missing = True  # unknown at start: look once

    async def _quietly(self, what: str, call: Awaitable[T], request: ConnectionRequest) -> T | None:
        """Run a notification; a failure is logged (by kind only) and never propagates."""
        try:
            return await call
        except Exception as error:
            log.warning("notification_failed id=%s what=%s reason=%s", request.id, what, why(error))
            self._metrics.count_error(f"slack_{why(error)}")
            return None

    async def update_card(self, request: ConnectionRequest) -> None:
        await self._quietly("update_card", self._notifier.update_card(request), request)

    async def tell_requester(self, request: ConnectionRequest) -> None:
        await self._quietly("tell_requester", self._notifier.tell_requester(request), request)

    async def tell_everyone(self, request: ConnectionRequest) -> None:
        """The card redrawn, and the requester's DM: what a change of state needs."""
        await self.update_card(request)
        await self.tell_requester(request)

    async def note_in_thread(self, request: ConnectionRequest, notice: Notice) -> None:
        await self._quietly(
            "note_in_thread", self._notifier.note_in_thread(request, notice), request
        )

    async def remind_requester(self, request: ConnectionRequest) -> None:
        await self._quietly("reminder", self._notifier.remind_requester(request), request)

    async def guide_approver(self, request: ConnectionRequest) -> None:
        await self._quietly("guide_approver", self._notifier.guide_approver(request), request)

    async def close_invitation(self, request: ConnectionRequest) -> None:
        await self._quietly("close_invitation", self._notifier.close_invitation(request), request)

    async def hand_over(self, request: ConnectionRequest, code: str) -> None:
        """The code to the requester, when it could not be stored: only this process
        knows it, so it is sent before anything else can lose it."""
        delivery = self._notifier.deliver_invitation(request, code)
        await self._quietly("deliver_invitation", delivery, request)

    async def deliver(self, request: ConnectionRequest, code: str) -> ConnectionRequest:
        """DM the code and record how that went: its DM, or the refusal that keeps it
        stored for Resend code; then redraw the card."""
        try:
            dm_ref = await self._notifier.deliver_invitation(request, code)
        except Exception as error:
            reason = why(error)
            log.warning("delivery_failed id=%s reason=%s", request.id, reason)
            self._metrics.count_error(f"delivery_{reason}")
            undelivered = await self._store.annotate(
                request.id, error=Problem.UNDELIVERED, error_detail=reason
            )
            request = undelivered or request
        else:
            delivered = await self._store.annotate(
                request.id, error=None, error_detail=None, code_dm_ref=dm_ref
            )
            request = delivered or request
        await self.update_card(request)
        return request

    async def post_card(self, request: ConnectionRequest) -> ConnectionRequest:
        """Post the card once: whoever claims it posts it, and gives the claim back on failure."""
        if not await self._store.claim_card(request.id, self._now()):
            return request
        card_ref = None
        try:
            card_ref = await self._quietly("post_card", self._notifier.post_card(request), request)
            if card_ref is None:
                return request
            await self._store.set_card(request.id, card_ref)
        finally:
            if card_ref is None:  # the post failed, or something stopped us: let go
                await self._store.release_card(request.id)
                self.cards_missing = True
        posted = await self._store.get(request.id) or request
        if posted.status is not request.status:  # decided while the card was on its way
            await self.update_card(posted)
        return posted

    async def post_missing_cards(self) -> None:
        """Post the cards that could not be posted before, and those whose post was
        claimed by a process that stopped mid-post (claims older than any post takes)."""
        await self._store.release_stale_card_claims(self._now() - CARD_CLAIM_LIFETIME)
        self.cards_missing = False
        for waiting in await self._store.without_card():
            await self.post_card(waiting)


def why(error: Exception) -> str:
    """What to log of a failed notification: Slack's reason code, or just the kind."""
    return str(error) if isinstance(error, DeliveryFailed) else type(error).__name__
