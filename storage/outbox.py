"""The outbox's queue: which messages are due, who sends each, and how each ended.

A message is due when it is the oldest unsent one of its request's lane (messages of a
lane go out in order: a thread note never before its card), its time has come, and
nobody holds it. Taking one is a compare-and-set, so with several replicas each message
is sent by one; a hold expires, so a replica that stops mid-send loses the message to
another, not the message itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.approvals.messages import Lane, OutboxItem
from storage.queries import at_once
from storage.rows import to_item
from storage.tables import OutboxRow


class OutboxQueue:
    """The queue over the ``outbox`` table; ``pause`` as for ``RequestRepository``, and
    ``one_writer`` its lock on SQLite, so this process's writes queue behind each other
    instead of colliding in SQLite's lock. Its writes change no request, so they do not
    count as the repository's ``writes``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        pause: Callable[[], Awaitable[None]] = at_once,
        one_writer: asyncio.Lock | None = None,
    ) -> None:
        self._opened = sessions
        self._pause = pause
        self._one_writer = one_writer

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        await self._pause()
        async with contextlib.AsyncExitStack() as stack:
            if self._one_writer is not None:
                await stack.enter_async_context(self._one_writer)
            yield await stack.enter_async_context(self._opened.begin())

    async def take_due(
        self, now: datetime, holder: str, until: datetime, limit: int = 50
    ) -> list[OutboxItem]:
        """Hold, for ``holder`` until ``until``, the messages that may be sent now: the
        head of each lane, its time come, held by nobody (or by a replica whose hold ran
        out); oldest first. One statement for the lot, and each message goes to one
        taker: a taker that waited for another's row finds it held when it looks again.
        """
        earlier = aliased(OutboxRow)
        head = ~sa.exists().where(
            sa.or_(
                earlier.request_id == OutboxRow.request_id,
                earlier.card_id == OutboxRow.card_id,
            ),
            earlier.lane == OutboxRow.lane,
            earlier.sent_at.is_(None),
            earlier.id < OutboxRow.id,
        )
        due = (
            sa.select(OutboxRow.id)
            .where(OutboxRow.sent_at.is_(None), OutboxRow.due_at <= now, _free(now), head)
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        taking = (
            sa.update(OutboxRow)
            .where(OutboxRow.id.in_(due.scalar_subquery()), OutboxRow.sent_at.is_(None), _free(now))
            .values(claimed_by=holder, claimed_until=until)
            .returning(OutboxRow)
            .execution_options(synchronize_session=False)
        )
        async with self._writing() as session:
            rows = (await session.scalars(taking)).all()
            return sorted((to_item(row) for row in rows), key=lambda item: item.id)

    async def sent(self, item: OutboxItem, at: datetime, *, holder: str) -> None:
        """Slack took it. A card's redraw takes with it every older redraw waiting in
        its lane: they would draw the same card."""
        conditions = [OutboxRow.id == item.id]
        if item.message.say.redraws:
            conditions = [
                _about(item),
                OutboxRow.lane == Lane.CARD.value,
                OutboxRow.say == item.message.say.value,
                OutboxRow.sent_at.is_(None),
                OutboxRow.id <= item.id,
                sa.or_(OutboxRow.claimed_by.is_(None), OutboxRow.claimed_by == holder),
            ]
        await self._update(
            {"sent_at": at, "claimed_by": None, "claimed_until": None, "parked": None},
            *conditions,
        )

    async def newest_redraw(self, item: OutboxItem) -> int | None:
        """The id of the newest redraw waiting for the card ``item`` redraws: sending
        that one is enough for all."""
        await self._pause()
        async with self._opened() as session:
            return await session.scalar(
                sa.select(sa.func.max(OutboxRow.id)).where(
                    _about(item),
                    OutboxRow.say == item.message.say.value,
                    OutboxRow.sent_at.is_(None),
                )
            )

    async def later(self, item: OutboxItem, due_at: datetime, *, parked: str | None = None) -> None:
        """Try again at ``due_at``; ``parked`` names a cause that will not heal by itself."""
        await self._update(
            {
                "due_at": due_at,
                "attempts": item.attempts + 1,
                "parked": parked,
                "claimed_by": None,
                "claimed_until": None,
            },
            OutboxRow.id == item.id,
        )

    async def unpark(self, causes: Iterable[str], now: datetime) -> None:
        """The causes are gone: what waited for them is due now."""
        await self._update({"due_at": now}, OutboxRow.parked.in_(list(causes)))

    async def parked(self) -> dict[str, int]:
        """How many messages wait for each cause that will not heal by itself."""
        await self._pause()
        async with self._opened() as session:
            rows = await session.execute(
                sa.select(OutboxRow.parked, sa.func.count())
                .where(OutboxRow.parked.is_not(None), OutboxRow.sent_at.is_(None))
                .group_by(OutboxRow.parked)
            )
            return {str(cause): int(count) for cause, count in rows}

    async def holders(self) -> set[str]:
        """The replicas holding messages not sent yet."""
        await self._pause()
        async with self._opened() as session:
            rows = await session.scalars(
                sa.select(OutboxRow.claimed_by)
                .where(OutboxRow.claimed_by.is_not(None), OutboxRow.sent_at.is_(None))
                .distinct()
            )
            return {str(holder) for holder in rows}

    async def release(self, holders: Iterable[str]) -> None:
        """Let go of what ``holders`` (replicas known gone) held, for others to send."""
        await self._update(
            {"claimed_by": None, "claimed_until": None},
            OutboxRow.claimed_by.in_(list(holders)),
            OutboxRow.sent_at.is_(None),
        )

    async def waiting(self) -> int:
        """Messages not sent yet, due or not."""
        await self._pause()
        async with self._opened() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))
            )
            return int(count or 0)

    async def _update(self, values: dict[str, object], *conditions: sa.ColumnElement[bool]) -> bool:
        async with self._writing() as session:
            result = await session.execute(sa.update(OutboxRow).where(*conditions).values(**values))
            return bool(result.rowcount)  # type: ignore[attr-defined]


def _about(item: OutboxItem) -> sa.ColumnElement[bool]:
    """The messages about what ``item`` is about: its request, or its incident card."""
    if item.card_id is not None:
        return OutboxRow.card_id == item.card_id
    return OutboxRow.request_id == item.request_id


def _free(now: datetime) -> sa.ColumnElement[bool]:
    """Held by nobody, or by a replica whose hold ran out."""
    return sa.or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now)
