"""What the people's use cases and the life cycle both do to a request: load it, move it
with one compare-and-set, tell people, post its card, deliver its code.

Telling people is best effort: a Slack failure is logged and never undoes or blocks a
transition, so the request always stays in a state someone can finish from.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from bot.approvals.errors import Conflict, RequestNotFound
from bot.approvals.model import ConnectionRequest, Problem, Status
from bot.metrics import Metrics
from bot.ports import DeliveryFailed, Notifier, RequestStore
from bot.vault import Vault

log = logging.getLogger(__name__)
T = TypeVar("T")

# A card post (with Slack's rate-limit retries) takes seconds; a claim older than this
# was left by a process that stopped mid-post.
CARD_CLAIM_LIFETIME = timedelta(minutes=10)


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


class Transitions:
    """The one place that changes a request's state, and tells people it changed."""

    def __init__(
        self,
        repository: RequestStore,
        notifier: Notifier,
        vault: Vault,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.repository = repository
        self.notifier = notifier
        self.vault = vault
        self.metrics = metrics
        self.clock = clock
        self.cards_missing = True  # unknown at start: look once

    async def load(self, request_id: int) -> ConnectionRequest:
        request = await self.repository.get(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        return request

    async def move(
        self,
        request: ConnectionRequest,
        target: Status,
        actor: str,
        **changes: str | bytes | None,
    ) -> ConnectionRequest:
        """One compare-and-set; a lost race becomes Conflict with the winner's state."""
        moved = await self.repository.transition(
            request,
            target,
            actor=actor,
            at=self.clock(),
            **changes,  # type: ignore[arg-type]
        )
        if moved is None:
            raise Conflict(await self.load(request.id))
        return moved

    async def tell_everyone(self, request: ConnectionRequest) -> None:
        await self.quietly("update_card", self.notifier.update_card(request), request)
        await self.quietly("tell_requester", self.notifier.tell_requester(request), request)

    async def quietly(self, what: str, call: Awaitable[T], request: ConnectionRequest) -> T | None:
        """Run a notification; a failure is logged (by kind only) and never propagates."""
        try:
            return await call
        except Exception as error:
            log.warning("notification_failed id=%s what=%s reason=%s", request.id, what, why(error))
            self.metrics.count_error(f"slack_{why(error)}")
            return None

    async def deliver(self, request: ConnectionRequest, code: str) -> ConnectionRequest:
        """DM the code; on failure keep it stored and let the card offer a resend."""
        try:
            dm_ref = await self.notifier.deliver_invitation(request, code)
        except Exception as error:
            reason = why(error)
            log.warning("delivery_failed id=%s reason=%s", request.id, reason)
            self.metrics.count_error(f"delivery_{reason}")
            undelivered = await self.repository.annotate(
                request.id, error=Problem.UNDELIVERED, error_detail=reason
            )
            request = undelivered or request
        else:
            delivered = await self.repository.annotate(
                request.id, error=None, error_detail=None, code_dm_ref=dm_ref
            )
            request = delivered or request
        await self.quietly("update_card", self.notifier.update_card(request), request)
        return request

    async def post_card(self, request: ConnectionRequest) -> ConnectionRequest:
        """Post the card once: whoever claims it posts it, and gives the claim back on failure."""
        if not await self.repository.claim_card(request.id, self.clock()):
            return request
        card_ref = None
        try:
            card_ref = await self.quietly("post_card", self.notifier.post_card(request), request)
            if card_ref is None:
                return request
            await self.repository.set_card(request.id, card_ref)
        finally:
            if card_ref is None:  # the post failed, or something stopped us: let go
                await self.repository.release_card(request.id)
                self.cards_missing = True
        posted = await self.load(request.id)
        if posted.status is not request.status:  # decided while the card was on its way
            await self.quietly("update_card", self.notifier.update_card(posted), posted)
        return posted

    async def post_missing_cards(self) -> None:
        """Post the cards that could not be posted before, and those whose post was
        claimed by a process that stopped mid-post (claims older than any post takes)."""
        await self.repository.release_stale_card_claims(self.clock() - CARD_CLAIM_LIFETIME)
        self.cards_missing = False
        for waiting in await self.repository.without_card():
            await self.post_card(waiting)


def why(error: Exception) -> str:
    """What to log of a failed notification: Slack's reason code, or just the kind."""
    return str(error) if isinstance(error, DeliveryFailed) else type(error).__name__


def expect_seen(request: ConnectionRequest, seen: str | None) -> None:
    if seen is not None and seen != request.fingerprint:
        raise Conflict(request)


def expect(request: ConnectionRequest, *statuses: Status) -> None:
    if request.status not in statuses:
        raise Conflict(request)
