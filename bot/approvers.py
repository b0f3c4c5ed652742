"""Who may decide on a request: the approvers of its rule (a route's, or the default
ones), and never the requester themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from bot.approvals.errors import NotAllowed
from bot.approvals.model import ConnectionRequest
from bot.approvals.routes import Routes, Rule
from bot.ports import DirectoryUnavailable, GroupDirectory

GROUP_CACHE_SECONDS = 60.0


class ApproverPolicy:
    """Checks a person against the approvers of a request's rule on every click: its
    route's, or ``EXALATE_APPROVERS`` for requests no route matched.

    User-group membership is looked up, not copied at start-up, so removing someone
    from the group takes their right away within ``GROUP_CACHE_SECONDS``. A lookup
    runs once for all who wait on it, and runs to its end even when they stop waiting
    (a form must be answered within 3 s, a rate-limited Slack may take longer): the
    person who is asked to submit again then finds the answer ready.
    """

    def __init__(
        self,
        routes: Routes,
        groups: GroupDirectory,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes = routes
        self._groups = groups
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lookups: dict[str, asyncio.Task[frozenset[str]]] = {}

    def rule_of(self, request: ConnectionRequest) -> Rule:
        """The rule the request was made under; the default for one that has none."""
        return request.route or self.routes.default

    def deciders(self, request: ConnectionRequest) -> tuple[str, ...]:
        """The ids that may decide it now: its rule's approvers and, once it is
        escalated, the escalation group too."""
        return self.rule_of(request).deciders(escalated=request.escalated_at is not None)

    async def is_among(self, user_id: str, ids: Iterable[str]) -> bool:
        """Whether ``user_id`` is one of ``ids`` or in one of its groups."""
        ids = tuple(ids)
        if user_id in ids:
            return True
        groups = [item for item in ids if item.startswith("S")]
        memberships = await asyncio.gather(*(self._group(group) for group in groups))
        return any(user_id in members for members in memberships)

    async def may_decide(self, user_id: str, request: ConnectionRequest) -> bool:
        """Whether ``user_id`` may approve or reject ``request`` now (never its requester)."""
        return user_id != request.requester and await self.is_among(user_id, self.deciders(request))

    async def ensure_can_decide(self, user_id: str, request: ConnectionRequest) -> None:
        """Raise NotAllowed unless ``user_id`` may approve, reject or retry ``request``."""
        if user_id == request.requester:
            raise NotAllowed(
                "You asked for this connection, so another approver has to decide on it."
            )
        await self.ensure_approver(
            user_id,
            request,
            "Only approvers of this request can approve, reject or retry it. "
            "Ask an Exalate admin if you should be one.",
        )

    async def ensure_approver(self, user_id: str, request: ConnectionRequest, refusal: str) -> None:
        """Raise NotAllowed(``refusal``) unless ``user_id`` is one of the request's
        approvers right now."""
        try:
            allowed = await self.is_among(user_id, self.deciders(request))
        except DirectoryUnavailable:
            raise NotAllowed(
                "Slack could not say who is in the approver groups just now; try again in a minute."
            ) from None
        if not allowed:
            raise NotAllowed(refusal)

    async def _group(self, group_id: str) -> frozenset[str]:
        cached = self._members.get(group_id)
        # A clock set back makes the age negative: stale, so a removal is not outlived.
        if cached is not None and 0 <= self._clock() - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        lookup = self._lookups.get(group_id)
        if lookup is None:
            lookup = self._lookups[group_id] = asyncio.create_task(self._look_up(group_id))
            lookup.add_done_callback(lambda done: self._forget(group_id, done))
        return await asyncio.shield(lookup)

    def _forget(self, group_id: str, lookup: asyncio.Task[frozenset[str]]) -> None:
        """Drop a finished lookup; its failure, logged where it happened, is retrieved
        so that asyncio does not report it again when nobody waited for it."""
        self._lookups.pop(group_id, None)
        if not lookup.cancelled():
            lookup.exception()

    async def _look_up(self, group_id: str) -> frozenset[str]:
        members = await self._groups.members(group_id)
        self._members[group_id] = (self._clock(), members)
        return members

    def pending_lookups(self) -> list[asyncio.Task[frozenset[str]]]:
        """Lookups still running (a test waits for them; ``close`` stops them)."""
        return list(self._lookups.values())

    async def close(self) -> None:
        """Stop lookups nobody waits for any more (at shutdown)."""
        lookups = self.pending_lookups()
        for lookup in lookups:
            lookup.cancel()
        await asyncio.gather(*lookups, return_exceptions=True)
