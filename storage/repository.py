"""The repository: requests in and out of the database, and atomic transitions; its
reads are in ``storage.queries``.

Every transition is one ``UPDATE … WHERE id = :id AND status = :expected AND version =
:version`` plus its audit row, in one database transaction. The caller whose update hit
a row won and does the side effect; everyone else gets ``None`` and does nothing. That
single rule is what makes double clicks, racing approvers and several bot processes
safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.approvals.limits import AlreadySubmitted
from bot.approvals.messages import Message, Say
from bot.approvals.model import (
    BOT_ACTOR,
    OPEN_STATUSES,
    ConnectionRequest,
    RequestFields,
    Status,
    can_transition,
    name_key,
)
from bot.approvals.routes import Rule
from storage.incidents import IncidentRepository
from storage.limits import (
    NameTaken,
    SubmissionLimits,
    check_limits,
)
from storage.outbox import OutboxQueue
from storage.queries import RequestReads, at_once
from storage.rows import OUTBOX_POSTS, POSTING, TOLD, audit_row, outbox_row, to_domain
from storage.tables import RequestRow

# The key space of PostgreSQL advisory locks that queue one person's submissions.
_PER_REQUESTER_LOCKS = 1

# Columns callers may write besides the state itself.
ANNOTATIONS = frozenset(
    {
        "decided_by",
        "reason",
        "error",
        "error_detail",
        "exalate_connection_id",
        "invitation_code",
        "exalate_status",
        "reminders_sent",
        "code_dm_ref",
        "missed_polls",
        "name_absent_at",
        "last_attempt",
        "initiated_by",
        "requester",
    }
)


def _enqueue(
    session: AsyncSession, request: ConnectionRequest, messages: Iterable[Message], at: datetime
) -> None:
    """Add the messages about ``request`` to the outbox, in the caller's transaction, and
    mark the transaction as one that leaves the sender something to send."""
    for message in messages:
        session.add(outbox_row(request, message, at))
        session.info[TOLD] = True


def _said(error: DBAPIError) -> str:
    """The driver's error, by kind and its first line: no parameters, no SQL."""
    first_line = str(error.orig).splitlines()[0] if str(error.orig) else ""
    return f"{type(error.orig).__name__}: {first_line}"[:200]


def _checked(changes: dict[str, object]) -> dict[str, object]:
    if unknown := set(changes) - ANNOTATIONS:
        raise ValueError(f"not writable here: {', '.join(sorted(unknown))}")
    return changes


async def _update(
    session: AsyncSession, values: dict[str, object], *conditions: sa.ColumnElement[bool]
) -> ConnectionRequest | None:
    """One UPDATE … RETURNING: the changed request, or ``None`` if no row matched."""
    row = await session.scalar(
        sa.update(RequestRow)
        .where(*conditions)
        .values(**values)
        .returning(RequestRow)
        .execution_options(synchronize_session=False)
    )
    return to_domain(row) if row is not None else None


class RequestRepository(RequestReads):
    """Reads and writes connection requests; knows nothing of Slack or Exalate.

    ``pause`` is awaited before each read and each write transaction; by default it
    returns at once. The bot passes ``InFlight.give_way``: database work a listener does
    after its ack then keeps out of the way of answers still pending, as its HTTP
    requests do.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        pause: Callable[[], Awaitable[None]] = at_once,
    ) -> None:
        super().__init__(sessions, pause=pause)
        bind = sessions.kw.get("bind")
        self._dialect = bind.dialect.name if bind is not None else ""
        # SQLite has one writer at a time; writers that collide back off by sleeping
        # (1, 2, 5 … 100 ms). Queueing this process's writes here avoids those sleeps.
        self._one_writer = self._dialect == "sqlite"
        self._write_lock = asyncio.Lock()
        self.outbox = OutboxQueue(
            sessions, pause=pause, one_writer=self._write_lock if self._one_writer else None
        )
        """The messages to Slack these writes leave behind, for the outbox's sender."""
        self.incidents = IncidentRepository(sessions, self._writing, pause=pause)
        """Sync health's incidents, written through the same transactions."""
        self.writes = 0
        """Write transactions this process committed: shared reads go stale on each."""
        self.last_write_error: str | None = None
        """What the database said when the last write failed (a full disk, a read-only
        file), until a write goes through again: for ``/readyz``."""
        self.on_told: Callable[[], None] = lambda: None
        """Called after a write that left messages in the outbox: its sender wakes."""

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed on success, then counted in ``writes``; the
        sender is woken if it wrote messages."""
        await self._pause()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._one_writer:
                    await stack.enter_async_context(self._write_lock)
                session = await stack.enter_async_context(self._opened.begin())
                yield session
        except DBAPIError as error:
            if not isinstance(error, IntegrityError):  # a rule kept, not a failure
                self.last_write_error = _said(error)
            raise
        self.last_write_error = None
        self.writes += 1
        if session.info.pop(TOLD, False):
            self.on_told()

    async def add(
        self,
        fields: RequestFields,
        requester: str,
        at: datetime,
        limits: SubmissionLimits | None = None,
        *,
        view_id: str | None = None,
        route: Rule | None = None,
    ) -> ConnectionRequest:
        """Store a new request awaiting approval, decided under ``route`` (None: the
        default approvers); raises NameTaken if an open request of its site claims the
        name, TooManyOpen or TooFrequent past ``limits`` (and stores nothing). Its card
        is the outbox's to post, in the same transaction; a form submitted before
        (``view_id``) stores nothing and raises AlreadySubmitted."""
        if view_id is not None and (earlier := await self.submitted_from(view_id)):
            raise AlreadySubmitted(earlier)
        row = RequestRow(
            status=Status.PENDING_APPROVAL.value,
            version=1,
            requester=requester,
            local_short_name=fields.local_short_name,
            remote_short_name=fields.remote_short_name,
            connection_name=fields.connection_name,
            open_name=name_key(fields.connection_name),
            site=fields.site,
            description=fields.description,
            project_key=fields.project_key,
            created_at=at,
            updated_at=at,
            card_ref=OUTBOX_POSTS,
            view_id=view_id,
            route=None if route is None else route.to_json(),
            approved_by="",
        )
        try:
            async with self._writing() as session:
                if limits is not None and self._dialect == "postgresql":
                    # PostgreSQL lets two writers count at once: queue this person's
                    # submissions, so each one counts the rows the one before it added.
                    await session.execute(
                        sa.select(
                            sa.func.pg_advisory_xact_lock(
                                _PER_REQUESTER_LOCKS, sa.func.hashtext(requester)
                            )
                        )
                    )
                session.add(row)
                await session.flush()  # on SQLite the insert opens the write transaction
                if limits is not None:
                    await check_limits(session, row, limits)
                session.add(
                    audit_row(row.id, at, requester, None, Status.PENDING_APPROVAL, "requested")
                )
                added = to_domain(row)
                _enqueue(session, added, [Message(Say.POST_CARD)], at)
        except IntegrityError as error:
            if view_id is not None and (earlier := await self.submitted_from(view_id)):
                raise AlreadySubmitted(earlier) from None  # the same form, at the same time
            raise NameTaken(fields.connection_name) from error
        return added

    async def transition(
        self,
        request: ConnectionRequest,
        target: Status,
        *,
        actor: str,
        at: datetime,
        note: str | None = None,
        tell: Iterable[Message] = (),
        **changes: object,
    ) -> ConnectionRequest | None:
        """Move ``request`` to ``target`` if nobody moved it since it was read, and
        write what to ``tell`` people of it in the same transaction.

        ``changes`` are further columns to write (see ``ANNOTATIONS``); ``error`` and
        ``error_detail`` describe the new state and are cleared unless given. Returns
        the updated request, or ``None`` when another caller won the race.
        """
        if not can_transition(request.status, target):
            raise ValueError(f"{request.status} -> {target} is not a transition")
        values = (
            {"error": None, "error_detail": None}
            | _checked(changes)
            | {
                "status": target.value,
                "version": request.version + 1,
                "updated_at": at,
            }
        )
        if target not in OPEN_STATUSES:
            values["open_name"] = None
        async with self._writing() as session:
            moved = await _update(
                session,
                values,
                RequestRow.id == request.id,
                RequestRow.status == request.status.value,
                RequestRow.version == request.version,
            )
            if moved is not None:
                session.add(audit_row(request.id, at, actor, request.status, target, note))
                _enqueue(session, moved, tell, at)
            return moved

    async def approve(
        self,
        request: ConnectionRequest,
        approver: str,
        *,
        at: datetime,
        complete: bool,
        note: str,
        tell: Iterable[Message] = (),
        **changes: object,
    ) -> ConnectionRequest | None:
        """Count ``approver``'s approval if nobody approved or moved the request since it
        was read (a compare-and-set on ``approved_by``, the count, and the version), with
        its audit row; ``complete``: it is the last one needed, and the request moves to
        ``initiating`` with ``changes`` in the same update. None when another caller won."""
        values: dict[str, object] = {"approved_by": " ".join((*request.approved_by, approver))}
        target = Status.INITIATING if complete else Status.PENDING_APPROVAL
        if complete:  # a change of state; an approval short of the count changes none
            values |= {"error": None, "error_detail": None} | _checked(changes)
            values |= {"status": target.value, "version": request.version + 1, "updated_at": at}
        async with self._writing() as session:
            approved = await _update(
                session,
                values,
                RequestRow.id == request.id,
                RequestRow.status == Status.PENDING_APPROVAL.value,
                RequestRow.version == request.version,
                RequestRow.approved_by == " ".join(request.approved_by),
            )
            if approved is not None:
                session.add(audit_row(request.id, at, approver, request.status, target, note))
                _enqueue(session, approved, tell, at)
            return approved

    async def escalate(
        self, request: ConnectionRequest, *, at: datetime, tell: Iterable[Message] = ()
    ) -> ConnectionRequest | None:
        """Mark a request awaiting approval as escalated, once: the process whose update
        hit the row is the one that tells the escalation group."""
        async with self._writing() as session:
            escalated = await _update(
                session,
                {"escalated_at": at},
                RequestRow.id == request.id,
                RequestRow.status == Status.PENDING_APPROVAL.value,
                RequestRow.escalated_at.is_(None),
            )
            if escalated is not None:
                session.add(
                    audit_row(
                        request.id, at, BOT_ACTOR, request.status, request.status, "escalated"
                    )
                )
                _enqueue(session, escalated, tell, at)
            return escalated

    async def annotate(
        self,
        request_id: int,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
        **changes: object,
    ) -> ConnectionRequest | None:
        """Write columns that do not change the state (an error, a missed poll, …), and
        what to ``tell`` of it (written ``at`` then)."""
        return await self._write(_checked(changes), tell, at, RequestRow.id == request_id)

    async def store_code(
        self,
        request_id: int,
        sealed: bytes,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        """Keep a pasted code, only if the request is invited and still has none."""
        return await self._write(
            {"invitation_code": sealed, "error": None, "error_detail": None},
            tell,
            at,
            RequestRow.id == request_id,
            RequestRow.status == Status.INVITED.value,
            RequestRow.invitation_code.is_(None),
        )

    async def note_connection(
        self,
        request_id: int,
        connection_id: str,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        """Record the id of an assisted connection that appeared, only the first time."""
        return await self._write(
            {"exalate_connection_id": connection_id},
            tell,
            at,
            RequestRow.id == request_id,
            RequestRow.status == Status.ASSISTED.value,
            RequestRow.exalate_connection_id.is_(None),
        )

    async def note_status(
        self,
        request: ConnectionRequest,
        observed: str | None,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        """Record the status Exalate reports, if it changed and nobody recorded it yet.

        Returns the request only to the one process whose update changed the row, so a
        change is announced once however many replicas poll.
        """
        return await self._write(
            {"exalate_status": observed, "missed_polls": 0},
            tell,
            at,
            RequestRow.id == request.id,
            RequestRow.status == Status.INVITED.value,
            RequestRow.exalate_status.is_distinct_from(observed),
        )

    async def claim_reminder(
        self,
        request: ConnectionRequest,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> bool:
        """Count one more reminder, unless another process just did; True if ours, and
        then the reminder (``tell``) is written with the count."""
        counted = await self._write(
            {"reminders_sent": request.reminders_sent + 1},
            tell,
            at,
            RequestRow.id == request.id,
            RequestRow.status == request.status.value,
            RequestRow.reminders_sent == request.reminders_sent,
        )
        return counted is not None

    async def tell(
        self, request: ConnectionRequest, messages: Iterable[Message], at: datetime
    ) -> None:
        """Write messages about ``request`` that no change of it causes (a code sent
        again, say)."""
        async with self._writing() as session:
            _enqueue(session, request, messages, at)

    async def _write(
        self,
        values: dict[str, object],
        tell: Iterable[Message],
        at: datetime | None,
        *conditions: sa.ColumnElement[bool],
    ) -> ConnectionRequest | None:
        """One UPDATE, and what to tell of it if it hit the row, in one transaction."""
        async with self._writing() as session:
            changed = await _update(session, values, *conditions)
            if changed is not None and at is not None:
                _enqueue(session, changed, tell, at)
            return changed

    async def record(self, request: ConnectionRequest, actor: str, at: datetime, note: str) -> None:
        """Audit an event that changes no state, such as revealing the code again."""
        async with self._writing() as session:
            session.add(audit_row(request.id, at, actor, request.status, request.status, note))

    async def set_card(self, request_id: int, card_ref: str) -> None:
        """Remember where the approval card is, so it can be updated in place later."""
        await self._set_card(request_id, card_ref, RequestRow.card_ref.startswith(POSTING))

    async def _set_card(
        self, request_id: int, card_ref: str | None, condition: sa.ColumnElement[bool]
    ) -> bool:
        query = (
            sa.update(RequestRow)
            .where(condition, RequestRow.id == request_id)
            .values(card_ref=card_ref)
        )
        async with self._writing() as session:
            result = await session.execute(query)
            return bool(result.rowcount)  # type: ignore[attr-defined]
