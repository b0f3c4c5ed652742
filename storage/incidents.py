"""Incidents, their cards and their audit, and what the watch of each site remembers.

Every write is one transaction with the messages it leaves in the outbox. One incident
per condition can be open (the unique ``open_key``): two replicas that both see a
connection go to Error open it once, and the loser's transaction, its card included,
is rolled back. Cards change by compare-and-set on ``version``, as requests do.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.approvals.messages import Say
from bot.approvals.routes import Rule
from bot.health.model import Condition, Incident, IncidentCard, Kind, Opening, SiteView
from bot.health.notes import Happened, Note
from bot.health.watch import WatchState
from storage.queries import at_once
from storage.rows import TOLD, incident_outbox_row
from storage.tables import IncidentAuditRow, IncidentCardRow, IncidentRow, SiteWatchRow

CHANNEL_GAP = timedelta(minutes=1)
"""A channel gets at most one new incident card this often."""
BOT = "exalate-bot"


Writing = Callable[[], contextlib.AbstractAsyncContextManager[AsyncSession]]


class IncidentRepository:
    """Reads and writes incidents; ``writing`` is the repository's write transaction
    (it counts writes, wakes the outbox's sender, keeps SQLite's one writer)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        writing: Writing,
        *,
        pause: Callable[[], Awaitable[None]] = at_once,
    ) -> None:
        self._opened = sessions
        self._writing = writing
        self._pause = pause

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        await self._pause()
        async with self._opened() as session:
            yield session

    # --- the watch's memory ---------------------------------------------------------------

    async def watch(self, site: str) -> WatchState:
        async with self._reading() as session:
            text = await session.scalar(
                sa.select(SiteWatchRow.state).where(SiteWatchRow.site == site)
            )
        return WatchState() if text is None else WatchState.from_json(text)

    async def save_watch(self, site: str, state: WatchState, view: SiteView) -> None:
        values = {"observed_at": view.observed_at, "state": state.to_json(), "view": view.to_json()}
        async with self._writing() as session:
            updated = await session.execute(
                sa.update(SiteWatchRow).where(SiteWatchRow.site == site).values(**values)
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                session.add(SiteWatchRow(site=site, **values))

    async def views(self) -> list[SiteView]:
        """Each site's last poll, as the watch saw it."""
        async with self._reading() as session:
            rows = (await session.scalars(sa.select(SiteWatchRow))).all()
        return [SiteView.from_json(r.site, r.observed_at, r.view) for r in rows]

    # --- incidents ------------------------------------------------------------------------

    async def open_incidents(self, site: str | None = None) -> list[Incident]:
        query = sa.select(IncidentRow).where(IncidentRow.open_key.is_not(None))
        if site is not None:
            query = query.where(IncidentRow.site == site)
        async with self._reading() as session:
            rows = (await session.scalars(query.order_by(IncidentRow.id))).all()
        return [_incident(row) for row in rows]

    async def open(self, openings: Sequence[Opening], at: datetime) -> list[Incident]:
        """Open the incidents in one transaction, so those of a channel share a card
        posted once; where another writer opened one first, the others are opened one
        by one."""
        try:
            async with self._writing() as session:
                told: set[int] = set()
                return [await self._open(session, o, at, told) for o in openings]
        except IntegrityError:
            if len(openings) == 1:
                return []
        opened = []
        for opening in openings:
            with contextlib.suppress(IntegrityError):
                async with self._writing() as session:
                    opened.append(await self._open(session, opening, at, set()))
        return opened

    async def _open(
        self, session: AsyncSession, opening: Opening, at: datetime, told: set[int]
    ) -> Incident:
        """Open one incident on its card; the card is told once a transaction (``told``
        holds the cards told so far): it is drawn as it is when sent."""
        condition = opening.condition
        card, new = await self._card_to_join(session, opening, at)
        row = IncidentRow(
            card_id=card.id,
            site=condition.site,
            kind=condition.kind.value,
            subject=condition.subject,
            detail=condition.detail,
            open_key=condition.key,
            opened_at=at,
        )
        session.add(row)
        await session.flush()
        session.add(_audit(card.id, at, BOT, f"opened: {_said(condition)}"))
        if card.id not in told:
            say = Say.POST_INCIDENTS if new else Say.UPDATE_INCIDENTS
            _tell(session, card.id, say, at, due_at=card.post_at)
            told.add(card.id)
        return _incident(row)

    async def _card_to_join(
        self, session: AsyncSession, opening: Opening, at: datetime
    ) -> tuple[IncidentCardRow, bool]:
        """The site's card in the channel not posted yet, for the same owners; else a
        new card, due a minute after the channel's last one."""
        owners = None if opening.owners is None else opening.owners.to_json()
        waiting = await session.scalar(
            sa.select(IncidentCardRow)
            .where(
                IncidentCardRow.site == opening.condition.site,
                IncidentCardRow.channel == opening.channel,
                IncidentCardRow.card_ref.is_(None),
                IncidentCardRow.owners.is_(None)
                if owners is None
                else IncidentCardRow.owners == owners,
            )
            .order_by(IncidentCardRow.id.desc())
            .limit(1)
        )
        if waiting is not None:
            return waiting, False
        last = await session.scalar(
            sa.select(sa.func.max(IncidentCardRow.post_at)).where(
                IncidentCardRow.channel == opening.channel
            )
        )
        post_at = at if last is None else max(at, last + CHANNEL_GAP)
        card = IncidentCardRow(
            site=opening.condition.site,
            channel=opening.channel,
            owners=owners,
            created_at=at,
            post_at=post_at,
            version=0,
        )
        session.add(card)
        await session.flush()
        return card, True

    async def change(self, incident: Incident, detail: str, at: datetime) -> Incident | None:
        """The open incident's condition now reads ``detail``: the card is redrawn, and a
        connection's new status is noted in its thread."""
        condition = incident.condition
        async with self._writing() as session:
            row = await session.scalar(
                sa.update(IncidentRow)
                .where(
                    IncidentRow.id == incident.id,
                    IncidentRow.resolved_at.is_(None),
                    IncidentRow.detail == condition.detail,
                )
                .values(detail=detail)
                .returning(IncidentRow)
                .execution_options(synchronize_session=False)
            )
            if row is None:
                return None
            _tell(session, incident.card_id, Say.UPDATE_INCIDENTS, at)
            if condition.kind is Kind.CONNECTION:
                note = Note(
                    Happened.CHANGED,
                    condition.kind,
                    condition.subject,
                    detail=detail,
                    before=condition.detail,
                )
                _tell(session, incident.card_id, Say.INCIDENT_NOTE, at, note=note)
                session.add(
                    _audit(incident.card_id, at, BOT, f"changed: {condition.subject} is {detail}")
                )
            return _incident(row)

    async def resolve(self, incident: Incident, at: datetime) -> Incident | None:
        """The condition is gone: the incident is closed, its card redrawn, its thread told
        how long it lasted."""
        async with self._writing() as session:
            row = await session.scalar(
                sa.update(IncidentRow)
                .where(IncidentRow.id == incident.id, IncidentRow.resolved_at.is_(None))
                .values(resolved_at=at, open_key=None)
                .returning(IncidentRow)
                .execution_options(synchronize_session=False)
            )
            if row is None:
                return None
            resolved = _incident(row)
            condition = resolved.condition
            minutes = round((at - resolved.opened_at).total_seconds() / 60)
            note = Note(
                Happened.RESOLVED,
                condition.kind,
                condition.subject,
                detail=condition.detail,
                minutes=minutes,
            )
            _tell(session, resolved.card_id, Say.UPDATE_INCIDENTS, at)
            _tell(session, resolved.card_id, Say.INCIDENT_NOTE, at, note=note)
            session.add(
                _audit(
                    resolved.card_id, at, BOT, f"resolved after {minutes} min: {_said(condition)}"
                )
            )
            return resolved

    # --- cards ----------------------------------------------------------------------------

    async def card(self, card_id: int) -> IncidentCard | None:
        async with self._reading() as session:
            found = await _cards(session, [card_id])
        return found[0] if found else None

    async def open_cards(self) -> list[IncidentCard]:
        """The cards with an open incident, oldest first."""
        async with self._reading() as session:
            ids = (
                await session.scalars(
                    sa.select(IncidentRow.card_id)
                    .where(IncidentRow.open_key.is_not(None))
                    .distinct()
                )
            ).all()
            return await _cards(session, ids) if ids else []

    async def set_card(self, card_id: int, card_ref: str) -> None:
        """Remember where the card was posted: it takes no more incidents."""
        async with self._writing() as session:
            await session.execute(
                sa.update(IncidentCardRow)
                .where(IncidentCardRow.id == card_id, IncidentCardRow.card_ref.is_(None))
                .values(card_ref=card_ref)
            )

    async def acknowledge(
        self, card: IncidentCard, actor: str, at: datetime
    ) -> IncidentCard | None:
        """Record who acknowledged the card, if nobody did and nobody changed it since it
        was read; it gets no more reminders."""
        note = Note(Happened.ACKNOWLEDGED, actor=actor)
        return await self._press(
            card,
            {"acked_by": actor, "acked_at": at, "snoozed_by": None, "snoozed_until": None},
            note,
            at,
            IncidentCardRow.acked_by.is_(None),
        )

    async def snooze(
        self, card: IncidentCard, actor: str, until: datetime, at: datetime
    ) -> IncidentCard | None:
        """Hold the card's reminder until ``until``, if nobody changed it since it was read."""
        note = Note(Happened.SNOOZED, actor=actor, until=until)
        return await self._press(card, {"snoozed_by": actor, "snoozed_until": until}, note, at)

    async def _press(
        self,
        card: IncidentCard,
        values: dict[str, object],
        note: Note,
        at: datetime,
        *conditions: sa.ColumnElement[bool],
    ) -> IncidentCard | None:
        async with self._writing() as session:
            row = await session.scalar(
                sa.update(IncidentCardRow)
                .where(
                    IncidentCardRow.id == card.id,
                    IncidentCardRow.version == card.version,
                    *conditions,
                )
                .values(version=card.version + 1, **values)
                .returning(IncidentCardRow)
                .execution_options(synchronize_session=False)
            )
            if row is None:
                return None
            _tell(session, card.id, Say.UPDATE_INCIDENTS, at)
            _tell(session, card.id, Say.INCIDENT_NOTE, at, note=note)
            said = note.happened.value
            if note.until is not None:
                said += f" until {note.until.isoformat(timespec='minutes')}"
            session.add(_audit(card.id, at, note.actor, said))
        return _card(row, card.incidents)

    async def remind(self, card: IncidentCard, at: datetime) -> bool:
        """One reminder in the card's thread, if nobody acknowledged it and no other
        process reminded first; a snooze that ended is used up by it."""
        async with self._writing() as session:
            row = await session.scalar(
                sa.update(IncidentCardRow)
                .where(
                    IncidentCardRow.id == card.id,
                    IncidentCardRow.version == card.version,
                    IncidentCardRow.acked_by.is_(None),
                )
                .values(
                    version=card.version + 1,
                    reminded_at=at,
                    snoozed_by=None,
                    snoozed_until=None,
                )
                .returning(IncidentCardRow.id)
            )
            if row is None:
                return False
            _tell(session, card.id, Say.UPDATE_INCIDENTS, at)
            _tell(session, card.id, Say.INCIDENT_NOTE, at, note=Note(Happened.REMINDER))
            session.add(_audit(card.id, at, BOT, "reminded: open and not acknowledged"))
        return True

    async def record(self, card_id: int, actor: str, note: str, at: datetime) -> None:
        """Audit a press that changed nothing (refused, or too late)."""
        async with self._writing() as session:
            session.add(_audit(card_id, at, actor, note))

    async def history(self, card_id: int) -> list[tuple[datetime, str, str]]:
        """The card's audit, oldest first: (when, who, what)."""
        async with self._reading() as session:
            rows = (
                await session.scalars(
                    sa.select(IncidentAuditRow)
                    .where(IncidentAuditRow.card_id == card_id)
                    .order_by(IncidentAuditRow.id)
                )
            ).all()
        return [(row.at, row.actor, row.note) for row in rows]

    async def open_counts(self) -> dict[tuple[str, str], int]:
        """Open incidents by site and kind."""
        async with self._reading() as session:
            rows = await session.execute(
                sa.select(IncidentRow.site, IncidentRow.kind, sa.func.count())
                .where(IncidentRow.open_key.is_not(None))
                .group_by(IncidentRow.site, IncidentRow.kind)
            )
            return {(str(site), str(kind)): int(count) for site, kind, count in rows}


async def _cards(session: AsyncSession, ids: Sequence[int]) -> list[IncidentCard]:
    """The cards ``ids`` names, oldest first, each with its incidents."""
    cards = (
        await session.scalars(
            sa.select(IncidentCardRow)
            .where(IncidentCardRow.id.in_(ids))
            .order_by(IncidentCardRow.id)
        )
    ).all()
    incidents = (
        await session.scalars(
            sa.select(IncidentRow).where(IncidentRow.card_id.in_(ids)).order_by(IncidentRow.id)
        )
    ).all()
    return [
        _card(card, [_incident(i) for i in incidents if i.card_id == card.id]) for card in cards
    ]


def _tell(
    session: AsyncSession,
    card_id: int,
    say: Say,
    at: datetime,
    *,
    due_at: datetime | None = None,
    note: Note | None = None,
) -> None:
    session.add(
        incident_outbox_row(
            card_id, say, at, due_at=due_at, note=None if note is None else note.to_json()
        )
    )
    session.info[TOLD] = True


def _said(condition: Condition) -> str:
    if condition.kind is Kind.NODE:
        return f"node {condition.detail}"
    if condition.kind is Kind.QUEUE:
        return f"{condition.subject} queue stuck at {condition.detail}"
    return f"{condition.subject} is {condition.detail}"


def _audit(card_id: int, at: datetime, actor: str, note: str) -> IncidentAuditRow:
    return IncidentAuditRow(card_id=card_id, at=at, actor=actor, note=note)


def _incident(row: IncidentRow) -> Incident:
    return Incident(
        id=row.id,
        card_id=row.card_id,
        condition=Condition(row.site, Kind(row.kind), row.subject, row.detail),
        opened_at=row.opened_at,
        resolved_at=row.resolved_at,
    )


def _card(row: IncidentCardRow, incidents: Iterable[Incident]) -> IncidentCard:
    return IncidentCard(
        id=row.id,
        site=row.site,
        channel=row.channel,
        owners=None if row.owners is None else Rule.from_json(row.owners),
        created_at=row.created_at,
        incidents=tuple(incidents),
        card_ref=row.card_ref,
        acked_by=row.acked_by,
        acked_at=row.acked_at,
        snoozed_by=row.snoozed_by,
        snoozed_until=row.snoozed_until,
        reminded_at=row.reminded_at,
        version=row.version,
    )
