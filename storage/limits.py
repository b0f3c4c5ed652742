"""How much one person may ask for, checked inside the write that stores a request."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from bot.approvals.limits import NameTaken, SubmissionLimits, TooFrequent, TooManyOpen
from bot.approvals.model import Status
from storage.tables import RequestRow

__all__ = ["NameTaken", "SubmissionLimits", "TooFrequent", "TooManyOpen", "check_limits"]


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
