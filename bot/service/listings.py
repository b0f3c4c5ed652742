"""What people ask to see: what is pending (``/exalate status``, shared by everyone
asking at once), their own requests, what awaits their decision, one request's history,
and the connections pending in Exalate that no request created. Reads only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.approvals.model import (
    OPEN_STATUSES,
    AuditEvent,
    ConnectionRequest,
    ForeignInvitation,
    Page,
    Status,
)
from bot.approvers import ApproverPolicy
from bot.ports import DirectoryUnavailable, RequestStore
from bot.service.shared_read import SharedRead
from bot.service.site import Site, Sites
from bot.service.states import States, named

RECENT = timedelta(days=14)
# How long a list read may be shared: another replica's change shows within this.
OTHER_REPLICAS_LAG = 2.0


class Listings:
    """The lists and histories people read, in Slack or the App Home."""

    def __init__(
        self, states: States, store: RequestStore, sites: Sites, policy: ApproverPolicy
    ) -> None:
        self._states = states
        self._store = store
        self.sites = sites
        self._policy = policy
        self._open_pages: dict[tuple[int, str | None], SharedRead[Page]] = {}
        self._foreign_joined: dict[
            str | None, tuple[tuple[object, ...], tuple[ForeignInvitation, ...]]
        ] = {}

    def clock(self) -> datetime:
        return self._states.now()

    def foreign_pending(self, site: str | None = None) -> tuple[ForeignInvitation, ...]:
        """Pending connections no request created, from each site's last complete list
        (``site``'s only, if given). The same tuple while no list changed: a status
        answer rendered from it is shared until then (``handlers.shared_status``)."""
        parts = tuple(s.seen.foreign_pending for s in self._sites_or(site))
        if len(parts) == 1:
            return parts[0]
        joined = self._foreign_joined.get(site)
        if joined is None or any(a is not b for a, b in zip(joined[0], parts, strict=True)):
            joined = (parts, tuple(p for part in parts for p in part))
            self._foreign_joined[site] = joined
        return joined[1]

    def foreign_listed_at(self, site: str | None = None) -> datetime | None:
        """When the oldest of those lists was read; None while no site has one yet. A
        site never listed (down since the start) hides nobody else's."""
        moments = [s.seen.listed_at for s in self._sites_or(site)]
        return min((m for m in moments if m is not None), default=None)

    def _sites_or(self, site: str | None) -> list[Site]:
        return list(self.sites) if site is None else [self.sites[site]]

    async def open_requests(self, limit: int, site: str | None = None) -> Page:
        """Requests awaiting approval, in flight, failed, or awaiting the partner (on
        ``site`` only, if given).

        Everyone asking at about the same time shares one read (``SharedRead``): never
        older than this process's last write, nor than ``OTHER_REPLICAS_LAG``."""
        return await self._open_page(limit, site).get()

    async def renew_open_requests(self, limit: int, site: str | None = None) -> None:
        """Once an answer from ``open_requests`` is out: read again if the shared read is
        past half its age, so that people who keep asking are answered without waiting
        for the database."""
        await self._open_page(limit, site).renew(older_than=OTHER_REPLICAS_LAG / 2)

    def _open_page(self, limit: int, site: str | None) -> SharedRead[Page]:
        if (limit, site) not in self._open_pages:
            store = self._store
            self._open_pages[limit, site] = SharedRead(
                lambda: store.page(OPEN_STATUSES, limit=limit, site=site),
                writes=lambda: store.writes,
                max_age=OTHER_REPLICAS_LAG,
                clock=lambda: self._states.now().timestamp(),  # the runtime's: tests move it
            )
        return self._open_pages[limit, site]

    async def mine(self, user_id: str, limit: int) -> Page:
        """A person's requests, whatever their state, newest first."""
        return await self._store.page(limit=limit, requester=user_id)

    async def awaiting_decision(self, user_id: str, limit: int) -> Page | None:
        """Requests ``user_id`` may decide now and has not approved yet, newest first;
        ``None`` if they are no approver (of any route, or the default)."""
        try:
            if not await self._policy.is_among(user_id, self._policy.routes.everyone):
                return None
            theirs = [
                request
                for request in await self._store.with_status([Status.PENDING_APPROVAL])
                if user_id not in request.approved_by
                and await self._policy.may_decide(user_id, request)
            ]
        except DirectoryUnavailable:  # a failed group lookup hides one list, nothing more
            return None
        theirs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return Page(tuple(theirs[:limit]), len(theirs))

    async def invitations(self, limit: int) -> Page:
        """Invitations the partner has not accepted yet."""
        return await self._store.page([Status.INVITED], limit=limit)

    async def recently_accepted(self, limit: int) -> Page:
        """Connections the partner accepted in the last two weeks, latest first."""
        since = self._states.now() - RECENT
        return await self._store.page([Status.ACTIVE], limit=limit, changed_since=since)

    async def history(
        self, connection_name: str, viewer: str, site: str | None = None
    ) -> tuple[ConnectionRequest, list[AuditEvent] | None]:
        """The newest request for a connection name (on ``site``), with its audit trail
        if ``viewer`` may read it: the requester and the approvers (who approved, who
        revealed the code is theirs to know); None for anyone else."""
        request = await named(self._store, self.sites, connection_name, site)
        if viewer != request.requester:
            try:
                if not await self._policy.is_among(viewer, self._policy.deciders(request)):
                    return request, None
            except DirectoryUnavailable:
                return request, None
        return request, await self._store.history(request.id)
