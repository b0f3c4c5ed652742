"""How much one person may ask for, checked inside the write that stores a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from bot.approvals.model import Status
from storage.tables import RequestRow


class NameTaken(Exception):
    """Another open request of the same site already claims this connection name."""


@dataclass(frozen=True, slots=True)
class SubmissionLimits:
    """How much one person may ask for: open requests at once, submissions an hour."""

    max_open: int
    per_hour: int


class TooManyOpen(Exception):
    """The requester has ``max_open`` requests awaiting a decision; ``names`` are theirs,
    ``oldest`` is when the oldest of them began to wait."""

    def __init__(self, names: list[str], oldest: datetime) -> None:
        super().__init__(", ".join(names))
        self.names, self.oldest = names, oldest


class TooFrequent(Exception):
    """The requester submitted ``per_hour`` requests in the last hour; ``free_at`` is
    when the oldest of them leaves that hour."""

    def __init__(self, free_at: datetime) -> None:
        super().__init__(free_at.isoformat())
        self.free_at = free_at


async def check_limits(session: AsyncSession, added: RequestRow, limits: SubmissionLimits) -> None:
    """Raise if ``added``, already inserted in this transaction, puts its requester over
    ``limits``. Counting after the insert, inside the write transaction, keeps the count
    exact when processes submit at once: on SQLite a second writer waits for the first
    to commit and then counts its row too; on PostgreSQL a lock per requester, taken
    before the insert, does the same."""
    others = sa.and_(RequestRow.requester == added.requester, RequestRow.id != added.id)
    waiting = (
        await session.execute(
            sa.select(RequestRow.connection_name, RequestRow.updated_at)
            .where(
                others,
                RequestRow.status.in_([Status.PENDING_APPROVAL.value, Status.ASSISTED.value]),
            )
            .order_by(RequestRow.updated_at, RequestRow.id)  # ties: as submitted
        )
    ).all()
    if len(waiting) >= limits.max_open:
        raise TooManyOpen([name for name, _ in waiting], waiting[0][1])
    recent = (
        await session.scalars(
            sa.select(RequestRow.created_at)
            .where(others, RequestRow.created_at > added.created_at - timedelta(hours=1))
            .order_by(RequestRow.created_at)
        )
    ).all()
    if len(recent) >= limits.per_hour:
        raise TooFrequent(recent[len(recent) - limits.per_hour] + timedelta(hours=1))
