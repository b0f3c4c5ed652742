"""The repository: requests in and out of the database, and atomic transitions.

Every transition is one ``UPDATE … WHERE id = :id AND status = :expected AND version =
:version`` plus its audit row, in one database transaction. The caller whose update hit
a row won and does the side effect; everyone else gets ``None`` and does nothing. That
single rule is what makes double clicks, racing approvers and several bot processes
safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.approvals.model import (
    OPEN_STATUSES,
    ConnectionRequest,
    RequestFields,
    Status,
    can_transition,
)
from storage.tables import AuditRow, RequestRow


class NameTaken(Exception):
    """Another open request already claims this connection name."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of a request's history."""

    request_id: int
    at: datetime
    actor: str
    from_status: Status | None
    to_status: Status
    note: str | None


def _to_domain(row: RequestRow) -> ConnectionRequest:
    return ConnectionRequest(
        id=row.id,
        status=Status(row.status),
        version=row.version,
        fields=RequestFields(
            local_short_name=row.local_short_name,
            remote_short_name=row.remote_short_name,
            connection_name=row.connection_name,
            description=row.description,
            project_key=row.project_key,
        ),
        requester=row.requester,
        created_at=row.created_at,
        updated_at=row.updated_at,
        decided_by=row.decided_by,
        reason=row.reason,
        error=row.error,
        exalate_connection_id=row.exalate_connection_id,
        card_ref=row.card_ref,
        has_invitation_code=row.invitation_code is not None,
    )


class RequestRepository:
    """Reads and writes connection requests; knows nothing of Slack or Exalate."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, fields: RequestFields, requester: str, at: datetime) -> ConnectionRequest:
        """Store a new request awaiting approval; raises NameTaken if the name is claimed."""
        row = RequestRow(
            status=Status.PENDING_APPROVAL.value,
            version=1,
            requester=requester,
            local_short_name=fields.local_short_name,
            remote_short_name=fields.remote_short_name,
            connection_name=fields.connection_name,
            open_name=fields.connection_name.lower(),
            description=fields.description,
            project_key=fields.project_key,
            created_at=at,
            updated_at=at,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
                await session.flush()
                session.add(
                    AuditRow(
                        request_id=row.id,
                        at=at,
                        actor=requester,
                        from_status=None,
                        to_status=row.status,
                        note="requested",
                    )
                )
        except IntegrityError as error:
            raise NameTaken(fields.connection_name) from error
        return _to_domain(row)

    async def get(self, request_id: int) -> ConnectionRequest | None:
        """The request as stored now, or ``None``."""
        async with self._sessions() as session:
            row = await session.get(RequestRow, request_id)
            return _to_domain(row) if row is not None else None

    async def transition(
        self,
        request: ConnectionRequest,
        target: Status,
        *,
        actor: str,
        at: datetime,
        note: str | None = None,
        error: str | None = None,
        decided_by: str | None = None,
        reason: str | None = None,
        connection_id: str | None = None,
        invitation_code: bytes | None = None,
    ) -> ConnectionRequest | None:
        """Move ``request`` to ``target`` if nobody moved it since it was read.

        ``error`` describes the new state and is always written (``None`` clears an old
        failure); the other keyword values are written only when given. Returns the
        updated request, or ``None`` when another caller won the race.
        """
        if not can_transition(request.status, target):
            raise ValueError(f"{request.status} -> {target} is not a transition")
        values: dict[str, object] = {
            "status": target.value,
            "version": request.version + 1,
            "updated_at": at,
            "error": error,
        }
        if target not in OPEN_STATUSES:
            values["open_name"] = None
        for column, value in (
            ("decided_by", decided_by),
            ("reason", reason),
            ("exalate_connection_id", connection_id),
            ("invitation_code", invitation_code),
        ):
            if value is not None:
                values[column] = value
        async with self._sessions.begin() as session:
            result = await session.execute(
                sa.update(RequestRow)
                .where(
                    RequestRow.id == request.id,
                    RequestRow.status == request.status.value,
                    RequestRow.version == request.version,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            session.add(
                AuditRow(
                    request_id=request.id,
                    at=at,
                    actor=actor,
                    from_status=request.status.value,
                    to_status=target.value,
                    note=note,
                )
            )
            row = await session.get(RequestRow, request.id, populate_existing=True)
            assert row is not None
            return _to_domain(row)

    async def set_card(self, request_id: int, card_ref: str) -> None:
        """Remember where the approval card is, so it can be updated in place later."""
        async with self._sessions.begin() as session:
            await session.execute(
                sa.update(RequestRow).where(RequestRow.id == request_id).values(card_ref=card_ref)
            )

    async def set_error(self, request_id: int, error: str | None) -> ConnectionRequest | None:
        """Record a problem that does not change the state, such as a failed delivery."""
        async with self._sessions.begin() as session:
            row = await session.get(RequestRow, request_id)
            if row is None:
                return None
            row.error = error
            return _to_domain(row)

    async def without_card(self) -> list[ConnectionRequest]:
        """Requests awaiting approval whose card could not be posted yet."""
        async with self._sessions() as session:
            rows = await session.scalars(
                sa.select(RequestRow)
                .where(
                    RequestRow.status == Status.PENDING_APPROVAL.value,
                    RequestRow.card_ref.is_(None),
                )
                .order_by(RequestRow.id)
            )
            return [_to_domain(row) for row in rows]

    async def invitation_code(self, request_id: int) -> bytes | None:
        """The encrypted invitation code, read only when it is about to be delivered."""
        async with self._sessions() as session:
            return await session.scalar(
                sa.select(RequestRow.invitation_code).where(RequestRow.id == request_id)
            )

    async def with_status(self, statuses: Iterable[Status]) -> list[ConnectionRequest]:
        """Requests in any of ``statuses``, newest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                sa.select(RequestRow)
                .where(RequestRow.status.in_([status.value for status in statuses]))
                .order_by(RequestRow.created_at.desc(), RequestRow.id.desc())
            )
            return [_to_domain(row) for row in rows]

    async def name_is_open(self, connection_name: str) -> bool:
        """Whether an open request already claims ``connection_name`` (case-insensitive)."""
        async with self._sessions() as session:
            found = await session.scalar(
                sa.select(RequestRow.id).where(RequestRow.open_name == connection_name.lower())
            )
            return found is not None

    async def history(self, request_id: int) -> list[AuditEvent]:
        """The request's audit trail, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                sa.select(AuditRow).where(AuditRow.request_id == request_id).order_by(AuditRow.id)
            )
            return [
                AuditEvent(
                    request_id=row.request_id,
                    at=row.at,
                    actor=row.actor,
                    from_status=Status(row.from_status) if row.from_status else None,
                    to_status=Status(row.to_status),
                    note=row.note,
                )
                for row in rows
            ]
