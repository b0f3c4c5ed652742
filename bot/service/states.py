"""The one path every change of a request's state takes.

A move is one compare-and-set in the store with its audit event, stamped by the
runtime's clock. ``move`` is for people's use cases, where losing the race is news for
the person (Conflict, with the winner's state); ``move_if_first`` is for what Exalate
and time cause, where another replica getting there first is normal and means nothing
is left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from bot.approvals.errors import ApprovalError, Conflict, RequestNotFound
from bot.approvals.messages import Message
from bot.approvals.model import ConnectionRequest, Status
from bot.ports import RequestStore
from bot.service.site import Sites


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


class States:
    """Loads requests and moves them, one compare-and-set each."""

    def __init__(self, store: RequestStore, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self.now = clock

    async def load(self, request_id: int) -> ConnectionRequest:
        request = await self._store.get(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        return request

    async def move(
        self,
        request: ConnectionRequest,
        target: Status,
        actor: str,
        *,
        note: str | None = None,
        tell: Iterable[Message] = (),
        **changes: object,
    ) -> ConnectionRequest:
        """Move ``request`` as it was read, writing what to ``tell`` people of it in
        the same transaction; Conflict, with the winner's state, if someone moved it
        first."""
        moved = await self.move_if_first(request, target, actor, note=note, tell=tell, **changes)
        if moved is None:
            raise Conflict(await self.load(request.id))
        return moved

    async def move_if_first(
        self,
        request: ConnectionRequest,
        target: Status,
        actor: str,
        *,
        note: str | None = None,
        tell: Iterable[Message] = (),
        **changes: object,
    ) -> ConnectionRequest | None:
        """Move ``request`` as it was read, and ``tell``; None if someone moved it first."""
        return await self._store.transition(
            request, target, actor=actor, at=self.now(), note=note, tell=tell, **changes
        )

    async def approve(
        self,
        request: ConnectionRequest,
        actor: str,
        *,
        complete: bool,
        note: str,
        tell: Iterable[Message] = (),
        **changes: object,
    ) -> ConnectionRequest | None:
        """Count ``actor``'s approval of the request as it was read (and, if
        ``complete``, move it to ``initiating``); None if someone approved or moved it
        first."""
        return await self._store.approve(
            request, actor, at=self.now(), complete=complete, note=note, tell=tell, **changes
        )

    async def record(self, request: ConnectionRequest, actor: str, note: str) -> None:
        """Audit an event that changes no state (a code revealed, a code pasted)."""
        await self._store.record(request, actor, self.now(), note)


async def named(
    store: RequestStore, sites: Sites, connection_name: str, site: str | None
) -> ConnectionRequest:
    """The newest request for a connection name (on ``site``), as people name requests
    in commands; a name two configured sites have is refused until the person says
    which (a site gone from the settings cannot be named, so it does not count)."""
    if site is not None:
        site = sites[site].name
    else:
        holders = [s for s in await store.sites_named(connection_name) if s in sites.names]
        if len(holders) > 1:
            raise ApprovalError(
                f"Sites {', '.join(holders)} each have a request named {connection_name}; "
                f"say which, e.g. `site={holders[0]}`."
            )
    request = await store.named(connection_name, site)
    if request is None:
        where = f" on site {site}" if site is not None and sites.several else ""
        raise ApprovalError(f"There is no request for a connection named {connection_name}{where}.")
    return request


def expect_seen(request: ConnectionRequest, seen: str | None) -> None:
    """Conflict unless the request is as the clicked card showed it (its fingerprint)."""
    if seen is not None and seen != request.fingerprint:
        raise Conflict(request)


def expect(request: ConnectionRequest, *statuses: Status) -> None:
    """Conflict unless the request is in one of ``statuses``."""
    if request.status not in statuses:
        raise Conflict(request)
