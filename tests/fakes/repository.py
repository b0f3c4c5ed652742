"""The request store in memory, for the service tests: implements ``bot.ports.RequestStore``
and its outbox (``bot.ports.OutboxQueue``) as strictly as ``storage.RequestRepository``
does on a database.

Strict means the service cannot pass here and fail there: every state change is the same
compare-and-set on (id, status, version) and clears the error unless it gives one, a
move the life cycle lacks is a ValueError,
only the real table's writable columns may be written, an open name is unique per site
in any case, the submission limits count what ``storage/limits.py`` counts, a card is
the outbox's to post, messages are written with the writes that cause them (and only if
the write hit), and the outbox hands out the head of each lane, once.
``tests/service/test_store_contract.py`` runs the same behaviours against both, which is
what keeps this honest.

Each call gives way to the event loop once before it acts, as a database round trip
does, so callers racing each other interleave the way they do against the real store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.approvals.limits import (
    AlreadySubmitted,
    NameTaken,
    SubmissionLimits,
    TooFrequent,
    TooManyOpen,
)
from bot.approvals.messages import Lane, Message, OutboxItem, Say
from bot.approvals.model import (
    BOT_ACTOR,
    OPEN_STATUSES,
    AuditEvent,
    ConnectionRequest,
    CreateOutcome,
    Page,
    RequestFields,
    Status,
    can_transition,
)
from bot.approvals.routes import Rule
from storage.repository import ANNOTATIONS

POSTING = "posting:"  # card_ref while a card is being posted; never leaves the store
OUTBOX_POSTS = POSTING + "outbox"


@dataclass(frozen=True, slots=True)
class _Row:
    """One stored request: the request as readers see it (``of``), beside the columns
    they never see as such: the card claim, the sealed code, the open name."""

    of: ConnectionRequest
    card_ref: str | None = None
    invitation_code: bytes | None = None
    open_name: str | None = None

    @property
    def posting(self) -> bool:
        return self.card_ref is not None and self.card_ref.startswith(POSTING)

    def read(self) -> ConnectionRequest:
        """What ``storage.rows.to_domain`` makes of the row: no claim, no code."""
        return replace(
            self.of,
            card_ref=None if self.posting else self.card_ref,
            has_invitation_code=self.invitation_code is not None,
        )

    def written(self, changes: Mapping[str, object]) -> _Row:
        """The row with ``changes`` (column names) written, as they would read back."""
        fields = dict(changes)
        columns = {
            c: fields.pop(c) for c in ("card_ref", "invitation_code", "open_name") if c in fields
        }
        for name, value in fields.items():  # a column holds an enum's value, as text
            if isinstance(value, StrEnum) and name != "status":
                fields[name] = value.value
        if fields.get("last_attempt"):
            fields["last_attempt"] = CreateOutcome(str(fields["last_attempt"]))
        return replace(self, of=replace(self.of, **fields), **columns)  # type: ignore[arg-type]


def _checked(changes: dict[str, object]) -> dict[str, object]:
    if unknown := set(changes) - ANNOTATIONS:
        raise ValueError(f"not writable here: {', '.join(sorted(unknown))}")
    return changes


def _newest_first(rows: Iterable[_Row]) -> list[_Row]:
    return sorted(rows, key=lambda row: (row.of.created_at, row.of.id), reverse=True)


def _in(row: _Row, site: str | None) -> bool:
    return site is None or row.of.fields.site == site


def _named(row: _Row, connection_name: str) -> bool:
    return row.of.fields.connection_name.lower() == connection_name.lower()


class InMemoryRequestStore:
    """Requests and their audit trail in a dict and a list; ``writes`` counts write calls,
    lost races included, as the real store counts its committed transactions."""

    def __init__(self) -> None:
        self._rows: dict[int, _Row] = {}
        self._events: list[AuditEvent] = []
        self._views: dict[str, int] = {}
        self._next_id = 1
        self.writes = 0
        self.outbox = InMemoryOutbox()

    async def _turn(self) -> None:
        await asyncio.sleep(0)  # a round trip's worth of giving way, never a wait

    def _audit(
        self,
        request: ConnectionRequest,
        at: datetime,
        actor: str,
        source: Status | None,
        note: str | None,
    ) -> None:
        self._events.append(AuditEvent(request.id, at, actor, source, request.status, note))

    def _update(
        self,
        request_id: int,
        changes: Mapping[str, object],
        condition: Callable[[_Row], bool] = lambda _: True,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        """One UPDATE … WHERE id AND ``condition``: the request as written, or None;
        and if it hit, what to ``tell`` of it."""
        self.writes += 1
        row = self._rows.get(request_id)
        if row is None or not condition(row):
            return None
        self._rows[request_id] = row.written(changes)
        changed = self._rows[request_id].read()
        if at is not None:
            self.outbox.add(changed, tell, at)
        return changed

    # Writes

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
        await self._turn()
        if view_id is not None and view_id in self._views:
            raise AlreadySubmitted(self._rows[self._views[view_id]].read())
        open_name = fields.connection_name.lower()
        rows = self._rows.values()
        if any(r.of.fields.site == fields.site and r.open_name == open_name for r in rows):
            raise NameTaken(fields.connection_name)
        if limits is not None:
            self._check_limits(requester, at, limits)
        added = ConnectionRequest(
            self._next_id, Status.PENDING_APPROVAL, 1, fields, requester, at, at, route=route
        )
        self._next_id += 1
        self._rows[added.id] = _Row(added, card_ref=OUTBOX_POSTS, open_name=open_name)
        if view_id is not None:
            self._views[view_id] = added.id
        self._audit(added, at, requester, None, "requested")
        self.outbox.add(added, [Message(Say.POST_CARD)], at)
        self.writes += 1
        return added

    def _check_limits(self, requester: str, at: datetime, limits: SubmissionLimits) -> None:
        """``storage.limits.check_limits``: the requester's requests still waiting for a
        decision, longest waiting first, then their submissions in the hour before ``at``."""
        theirs = [row.of for row in self._rows.values() if row.of.requester == requester]
        waiting = sorted(
            (r for r in theirs if r.status in (Status.PENDING_APPROVAL, Status.ASSISTED)),
            key=lambda r: (r.updated_at, r.id),
        )
        if len(waiting) >= limits.max_open:
            raise TooManyOpen([r.fields.connection_name for r in waiting], waiting[0].updated_at)
        recent = sorted(r.created_at for r in theirs if r.created_at > at - timedelta(hours=1))
        if len(recent) >= limits.per_hour:
            raise TooFrequent(recent[len(recent) - limits.per_hour] + timedelta(hours=1))

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
        if not can_transition(request.status, target):
            raise ValueError(f"{request.status} -> {target} is not a transition")
        values = {"error": None, "error_detail": None} | _checked(changes)
        values |= {"status": target, "version": request.version + 1, "updated_at": at}
        if target not in OPEN_STATUSES:
            values["open_name"] = None
        await self._turn()
        moved = self._update(
            request.id,
            values,
            lambda row: row.of.status is request.status and row.of.version == request.version,
            tell,
            at,
        )
        if moved is not None:
            self._audit(moved, at, actor, request.status, note)
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
        values: dict[str, object] = {"approved_by": (*request.approved_by, approver)}
        if complete:
            values |= {"error": None, "error_detail": None} | _checked(changes)
            values |= {"status": Status.INITIATING, "version": request.version + 1}
            values["updated_at"] = at
        await self._turn()
        approved = self._update(
            request.id,
            values,
            lambda row: (
                row.of.status is Status.PENDING_APPROVAL
                and row.of.version == request.version
                and row.of.approved_by == request.approved_by
            ),
            tell,
            at,
        )
        if approved is not None:
            self._audit(approved, at, approver, request.status, note)
        return approved

    async def escalate(
        self, request: ConnectionRequest, *, at: datetime, tell: Iterable[Message] = ()
    ) -> ConnectionRequest | None:
        await self._turn()
        escalated = self._update(
            request.id,
            {"escalated_at": at},
            lambda row: row.of.status is Status.PENDING_APPROVAL and row.of.escalated_at is None,
            tell,
            at,
        )
        if escalated is not None:
            self._audit(escalated, at, BOT_ACTOR, request.status, "escalated")
        return escalated

    async def annotate(
        self,
        request_id: int,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
        **changes: object,
    ) -> ConnectionRequest | None:
        await self._turn()
        return self._update(request_id, _checked(changes), tell=tell, at=at)

    async def store_code(
        self,
        request_id: int,
        sealed: bytes,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        await self._turn()
        return self._update(
            request_id,
            {"invitation_code": sealed, "error": None, "error_detail": None},
            lambda row: row.of.status is Status.INVITED and row.invitation_code is None,
            tell,
            at,
        )

    async def note_connection(
        self,
        request_id: int,
        connection_id: str,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        await self._turn()
        return self._update(
            request_id,
            {"exalate_connection_id": connection_id},
            lambda row: row.of.status is Status.ASSISTED and row.of.exalate_connection_id is None,
            tell,
            at,
        )

    async def note_status(
        self,
        request: ConnectionRequest,
        observed: str | None,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> ConnectionRequest | None:
        await self._turn()
        return self._update(
            request.id,
            {"exalate_status": observed, "missed_polls": 0},
            lambda row: row.of.status is Status.INVITED and row.of.exalate_status != observed,
            tell,
            at,
        )

    async def claim_reminder(
        self,
        request: ConnectionRequest,
        *,
        tell: Iterable[Message] = (),
        at: datetime | None = None,
    ) -> bool:
        await self._turn()
        claimed = self._update(
            request.id,
            {"reminders_sent": request.reminders_sent + 1},
            lambda row: (
                (row.of.status, row.of.reminders_sent) == (request.status, request.reminders_sent)
            ),
            tell,
            at,
        )
        return claimed is not None

    async def tell(
        self, request: ConnectionRequest, messages: Iterable[Message], at: datetime
    ) -> None:
        await self._turn()
        self.outbox.add(request, messages, at)
        self.writes += 1

    async def record(self, request: ConnectionRequest, actor: str, at: datetime, note: str) -> None:
        await self._turn()
        self._audit(request, at, actor, request.status, note)
        self.writes += 1

    async def set_card(self, request_id: int, card_ref: str) -> None:
        await self._turn()
        self._update(request_id, {"card_ref": card_ref}, lambda row: row.posting)

    # Reads

    async def get(self, request_id: int) -> ConnectionRequest | None:
        await self._turn()
        row = self._rows.get(request_id)
        return row.read() if row is not None else None

    async def invitation_code(self, request_id: int) -> bytes | None:
        await self._turn()
        row = self._rows.get(request_id)
        return row.invitation_code if row is not None else None

    async def submitted_from(self, view_id: str) -> ConnectionRequest | None:
        await self._turn()
        request_id = self._views.get(view_id)
        return self._rows[request_id].read() if request_id is not None else None

    async def with_status(
        self, statuses: Iterable[Status], site: str | None = None
    ) -> list[ConnectionRequest]:
        await self._turn()
        wanted = set(statuses)
        rows = [r for r in self._rows.values() if r.of.status in wanted and _in(r, site)]
        return [row.read() for row in _newest_first(rows)]

    async def claimed_connections(self, site: str) -> tuple[set[str], set[str]]:
        await self._turn()
        ids, names = set(), set()
        for request in (row.of for row in self._rows.values() if _in(row, site)):
            if request.exalate_connection_id is not None:
                ids.add(request.exalate_connection_id)
            elif request.status in OPEN_STATUSES and request.may_adopt:
                names.add(request.fields.connection_name.lower())
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
        await self._turn()
        wanted = set(statuses) if statuses is not None else None
        rows = _newest_first(
            row
            for row in self._rows.values()
            if _in(row, site)
            and (wanted is None or row.of.status in wanted)
            and (requester is None or row.of.requester == requester)
            and (changed_since is None or row.of.updated_at >= changed_since)
        )
        if changed_since is not None:  # latest change first; a stable sort keeps ties newest first
            rows.sort(key=lambda row: row.of.updated_at, reverse=True)
        return Page(tuple(row.read() for row in rows[:limit]), len(rows))

    async def named(
        self, connection_name: str, site: str | None = None
    ) -> ConnectionRequest | None:
        await self._turn()
        rows = (r for r in self._rows.values() if _named(r, connection_name) and _in(r, site))
        found = _newest_first(rows)
        return found[0].read() if found else None

    async def sites_named(self, connection_name: str) -> list[str]:
        await self._turn()
        rows = self._rows.values()
        return sorted({r.of.fields.site for r in rows if _named(r, connection_name)})

    async def name_is_open(self, connection_name: str, site: str) -> bool:
        await self._turn()
        key = connection_name.lower()
        return any(r.open_name == key and _in(r, site) for r in self._rows.values())

    async def history(self, request_id: int) -> list[AuditEvent]:
        await self._turn()
        return [event for event in self._events if event.request_id == request_id]


@dataclass
class _Waiting:
    """One message in the outbox, and how it stands."""

    item: OutboxItem
    lane: Lane
    due_at: datetime
    held_by: str | None = None
    held_until: datetime | None = None
    sent: bool = False


class InMemoryOutbox:
    """``bot.ports.OutboxQueue`` in a list, as ``storage.outbox.OutboxQueue`` keeps it:
    the head of each lane, due and free, is handed out to one holder at a time."""

    def __init__(self) -> None:
        self._items: list[_Waiting] = []

    def add(self, request: ConnectionRequest, messages: Iterable[Message], at: datetime) -> None:
        for message in messages:
            item = OutboxItem(len(self._items) + 1, request.id, message, request)
            self._items.append(_Waiting(item, message.say.lane, at))

    def _free(self, waiting: _Waiting, now: datetime) -> bool:
        return waiting.held_until is None or waiting.held_until < now

    def _head(self, waiting: _Waiting) -> bool:
        return not any(
            other.item.request_id == waiting.item.request_id
            and other.lane is waiting.lane
            and not other.sent
            and other.item.id < waiting.item.id
            for other in self._items
        )

    async def take_due(
        self, now: datetime, holder: str, until: datetime, limit: int = 50
    ) -> list[OutboxItem]:
        await asyncio.sleep(0)
        taken = [
            w
            for w in self._items
            if not w.sent and w.due_at <= now and self._free(w, now) and self._head(w)
        ][:limit]
        for waiting in taken:
            waiting.held_by, waiting.held_until = holder, until
        return [w.item for w in taken]

    async def sent(self, item: OutboxItem, at: datetime, *, holder: str) -> None:
        await asyncio.sleep(0)
        for waiting in self._items:
            same = waiting.item.id == item.id
            older_redraw = (
                item.message.say.redraws
                and waiting.item.message.say is item.message.say
                and waiting.item.request_id == item.request_id
                and waiting.item.id <= item.id
                and waiting.held_by in (None, holder)
            )
            if not waiting.sent and (same or older_redraw):
                waiting.sent, waiting.held_by, waiting.held_until = True, None, None
                waiting.item = replace(waiting.item, parked=None)

    async def newest_redraw(self, item: OutboxItem) -> int | None:
        await asyncio.sleep(0)
        redraws = [
            w.item.id
            for w in self._items
            if not w.sent
            and w.item.request_id == item.request_id
            and w.item.message.say is item.message.say
        ]
        return max(redraws, default=None)

    async def later(self, item: OutboxItem, due_at: datetime, *, parked: str | None = None) -> None:
        await asyncio.sleep(0)
        waiting = self._items[item.id - 1]
        waiting.due_at, waiting.held_by, waiting.held_until = due_at, None, None
        waiting.item = replace(waiting.item, attempts=item.attempts + 1, parked=parked)

    async def unpark(self, causes: Iterable[str], now: datetime) -> None:
        await asyncio.sleep(0)
        wanted = set(causes)
        for waiting in self._items:
            if not waiting.sent and waiting.item.parked in wanted:
                waiting.due_at = now

    async def parked(self) -> dict[str, int]:
        await asyncio.sleep(0)
        counts: dict[str, int] = {}
        for waiting in self._items:
            if not waiting.sent and waiting.item.parked is not None:
                counts[waiting.item.parked] = counts.get(waiting.item.parked, 0) + 1
        return counts

    async def holders(self) -> set[str]:
        await asyncio.sleep(0)
        return {w.held_by for w in self._items if not w.sent and w.held_by is not None}

    async def release(self, holders: Iterable[str]) -> None:
        await asyncio.sleep(0)
        gone = set(holders)
        for waiting in self._items:
            if not waiting.sent and waiting.held_by in gone:
                waiting.held_by, waiting.held_until = None, None

    async def waiting(self) -> int:
        await asyncio.sleep(0)
        return sum(1 for w in self._items if not w.sent)
