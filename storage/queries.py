"""Reading requests: look-ups, lists and counts, in one site or across every site.

Apart from the writes (``storage.repository``) because reads need no more than a
session: no compare-and-set, no queue of writers. ``RequestRepository`` is these reads
plus the writes, so callers still hold one object.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from bot.approvals.model import (
    OPEN_STATUSES,
    AuditEvent,
    ConnectionRequest,
    Page,
    Status,
    name_key,
)
from storage.rows import to_domain, to_event
from storage.tables import AuditRow, RequestRow


def _newest_first(
    query: sa.Select[Any],
    limit: int | None,
    order: sa.ColumnElement[Any] | InstrumentedAttribute[Any] | None = None,
) -> sa.Select[Any]:
    """``order`` first if given, then newest request first; at most ``limit`` rows."""
    ordering = (order,) if order is not None else ()
    return query.order_by(*ordering, RequestRow.created_at.desc(), RequestRow.id.desc()).limit(
        limit
    )


def _in(statuses: Iterable[Status]) -> sa.ColumnElement[bool]:
    return RequestRow.status.in_([status.value for status in statuses])


def _named(connection_name: str) -> sa.ColumnElement[bool]:
    return sa.func.lower(RequestRow.connection_name) == name_key(connection_name)


def _in_site(site: str | None) -> tuple[sa.ColumnElement[bool], ...]:
    """The condition that keeps one site's requests; none for every site."""
    return () if site is None else (RequestRow.site == site,)


async def at_once() -> None:
    """The default ``pause``: nothing to wait for."""


class RequestReads:
    """The reads of ``RequestRepository``; see there for ``pause``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        pause: Callable[[], Awaitable[None]] = at_once,
    ) -> None:
        self._opened = sessions
        self._pause = pause

    @contextlib.asynccontextmanager
    async def _sessions(self) -> AsyncIterator[AsyncSession]:
        """A session for reading, once ``pause`` lets this caller go on."""
        await self._pause()
        async with self._opened() as session:
            yield session

    async def _select(
        self,
        query: sa.Select[Any],
        *,
        limit: int | None = None,
        order: sa.ColumnElement[Any] | InstrumentedAttribute[Any] | None = None,
    ) -> list[ConnectionRequest]:
        async with self._sessions() as session:
            rows = await session.scalars(_newest_first(query, limit, order))
            return [to_domain(row) for row in rows]

    async def get(self, request_id: int) -> ConnectionRequest | None:
        """The request as stored now, or ``None``."""
        async with self._sessions() as session:
            row = await session.get(RequestRow, request_id)
            return to_domain(row) if row is not None else None

    async def invitation_code(self, request_id: int) -> bytes | None:
        """The encrypted invitation code, read only when it is about to be delivered."""
        async with self._sessions() as session:
            return await session.scalar(
                sa.select(RequestRow.invitation_code).where(RequestRow.id == request_id)
            )

    async def submitted_from(self, view_id: str) -> ConnectionRequest | None:
        """The request a form (Slack's view id) stored, if it stored one."""
        found = await self._select(sa.select(RequestRow).where(RequestRow.view_id == view_id))
        return found[0] if found else None

    async def with_status(
        self, statuses: Iterable[Status], site: str | None = None
    ) -> list[ConnectionRequest]:
        """Requests in any of ``statuses`` (in ``site`` if given), newest first."""
        return await self._select(sa.select(RequestRow).where(_in(statuses), *_in_site(site)))

    async def claimed_connections(self, site: str) -> tuple[set[str], set[str]]:
        """What ``site``'s requests claim on its Exalate node: every connection id a
        request holds, and the lower-cased names of open requests whose connection may
        exist before its id is known (being created, in the console, or after an
        uncertain attempt)."""
        async with self._sessions() as session:
            rows = await session.scalars(
                sa.select(RequestRow).where(
                    RequestRow.site == site,
                    sa.or_(
                        RequestRow.exalate_connection_id.is_not(None),
                        RequestRow.name_absent_at.is_not(None),
                    ),
                )
            )
            ids, names = set(), set()
            for request in map(to_domain, rows):
                if request.exalate_connection_id is not None:
                    ids.add(request.exalate_connection_id)
                elif request.status in OPEN_STATUSES and request.may_adopt:
                    names.add(name_key(request.fields.connection_name))
            return ids, names

    async def page(
        self,
        statuses: Iterable[Status] | None = None,
        *,
        limit: int,
        requester: str | None = None,
        changed_since: datetime | None = None,
        site: str | None = None,
    ) -> Page:
        """The newest ``limit`` requests matching every given filter, and their total.

        Lists are cut in the database: a status page over 10,000 requests reads dozens
        of rows, not thousands.
        """
        conditions: list[sa.ColumnElement[bool]] = [*_in_site(site)]
        if statuses is not None:
            conditions.append(_in(statuses))
        if requester is not None:
            conditions.append(RequestRow.requester == requester)
        if changed_since is not None:
            conditions.append(RequestRow.updated_at >= changed_since)
        order = RequestRow.updated_at.desc() if changed_since is not None else None
        query = _newest_first(sa.select(RequestRow).where(*conditions), limit, order)
        async with self._sessions() as session:
            items = [to_domain(row) for row in await session.scalars(query)]
            total = await session.scalar(
                sa.select(sa.func.count()).select_from(RequestRow).where(*conditions)
            )
        return Page(tuple(items), int(total or 0))

    async def named(
        self, connection_name: str, site: str | None = None
    ) -> ConnectionRequest | None:
        """The newest request for ``connection_name`` (case-insensitive), in ``site`` if
        given; with several sites, ``sites_named`` says which hold one."""
        found = await self._select(
            sa.select(RequestRow).where(_named(connection_name), *_in_site(site)), limit=1
        )
        return found[0] if found else None

    async def sites_named(self, connection_name: str) -> list[str]:
        """The sites holding a request for ``connection_name`` (case-insensitive), so a
        person naming only the connection can be asked which one."""
        async with self._sessions() as session:
            sites = await session.scalars(
                sa.select(RequestRow.site).where(_named(connection_name)).distinct()
            )
            return sorted(sites)

    async def name_is_open(self, connection_name: str, site: str) -> bool:
        """Whether an open request of ``site`` already claims ``connection_name``
        (case-insensitive)."""
        async with self._sessions() as session:
            found = await session.scalar(
                sa.select(RequestRow.id).where(
                    RequestRow.site == site, RequestRow.open_name == name_key(connection_name)
                )
            )
            return found is not None

    async def open_in_sites_other_than(self, sites: Iterable[str]) -> dict[str, list[str]]:
        """For each site not in ``sites`` that still has open requests (pending invitations
        included), their connection names, sorted: a site cannot be removed from the
        configuration while they wait on its node."""
        async with self._sessions() as session:
            rows = await session.execute(
                sa.select(RequestRow.site, RequestRow.connection_name).where(
                    _in(OPEN_STATUSES), RequestRow.site.not_in(list(sites))
                )
            )
            found: dict[str, list[str]] = {}
            for site, name in sorted(rows.all()):
                found.setdefault(site, []).append(name)
            return found

    async def count_by_status(self) -> dict[str, int]:
        """How many requests are in each state, across every site (for metrics)."""
        async with self._sessions() as session:
            rows = await session.execute(
                sa.select(RequestRow.status, sa.func.count()).group_by(RequestRow.status)
            )
            return {str(status): int(count) for status, count in rows}

    async def count_by_site_and_status(self) -> dict[tuple[str, str], int]:
        """How many requests each site has in each state (for metrics)."""
        async with self._sessions() as session:
            rows = await session.execute(
                sa.select(RequestRow.site, RequestRow.status, sa.func.count()).group_by(
                    RequestRow.site, RequestRow.status
                )
            )
            return {(str(site), str(status)): int(count) for site, status, count in rows}

    async def audit_trail(self, since: datetime | None) -> list[tuple[AuditEvent, str, str]]:
        """Every audit event (from ``since`` on), oldest first, with its request's
        connection name and site."""
        query = sa.select(AuditRow, RequestRow.connection_name, RequestRow.site).join(
            RequestRow, RequestRow.id == AuditRow.request_id
        )
        if since is not None:
            query = query.where(AuditRow.at >= since)
        async with self._sessions() as session:
            result = await session.execute(query.order_by(AuditRow.at, AuditRow.id))
            return [(to_event(row), name, site) for row, name, site in result]

    async def history(self, request_id: int) -> list[AuditEvent]:
        """The request's audit trail, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                sa.select(AuditRow).where(AuditRow.request_id == request_id).order_by(AuditRow.id)
            )
            return [to_event(row) for row in rows]
