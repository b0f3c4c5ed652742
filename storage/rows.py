"""Rows to domain values and back: requests, audit events, card claims, outbox items
and the snapshots of requests they carry."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from bot.approvals.messages import Message, Notice, OutboxItem, Say
from bot.approvals.model import (
    AuditEvent,
    ConnectionRequest,
    CreateOutcome,
    RequestFields,
    Status,
)
from bot.approvals.routes import Rule
from storage.tables import AuditRow, OutboxRow, RequestRow

# card_ref while one process posts the card ("posting:<when>"); never leaves storage.
POSTING = "posting:"
OUTBOX_POSTS = POSTING + "outbox"
"""card_ref of a card the outbox is to post. It sorts after every timed claim, so the
previous version, which voids claims older than ten minutes, never posts it too."""


def claim(at: datetime) -> str:
    """A claim that sorts by time: ISO 8601 in UTC, to the second."""
    return POSTING + at.astimezone(UTC).isoformat(timespec="seconds")


def to_domain(row: RequestRow) -> ConnectionRequest:
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
            site=row.site,
        ),
        requester=row.requester,
        created_at=row.created_at,
        updated_at=row.updated_at,
        decided_by=row.decided_by,
        reason=row.reason,
        error=row.error,
        error_detail=row.error_detail,
        exalate_connection_id=row.exalate_connection_id,
        card_ref=None if (row.card_ref or POSTING).startswith(POSTING) else row.card_ref,
        has_invitation_code=row.invitation_code is not None,
        exalate_status=row.exalate_status,
        reminders_sent=row.reminders_sent or 0,
        code_dm_ref=row.code_dm_ref,
        missed_polls=row.missed_polls or 0,
        name_absent_at=row.name_absent_at,
        last_attempt=CreateOutcome(row.last_attempt) if row.last_attempt else None,
        initiated_by=row.initiated_by,
        route=Rule.from_json(row.route) if row.route else None,
        approved_by=tuple(row.approved_by.split()) if row.approved_by else (),
        escalated_at=row.escalated_at,
    )


def to_event(row: AuditRow) -> AuditEvent:
    return AuditEvent(
        request_id=row.request_id,
        at=row.at,
        actor=row.actor,
        from_status=Status(row.from_status) if row.from_status else None,
        to_status=Status(row.to_status),
        note=row.note,
    )


def audit_row(
    request_id: int,
    at: datetime,
    actor: str,
    source: Status | None,
    target: Status,
    note: str | None,
) -> AuditRow:
    return AuditRow(
        request_id=request_id,
        at=at,
        actor=actor,
        from_status=source.value if source else None,
        to_status=target.value,
        note=note,
    )


_MOMENTS = ("created_at", "updated_at", "name_absent_at", "escalated_at")


# Added by revision 0006; left out of a snapshot while they hold their default, so that
# a replica of the previous version, whose snapshots lack them, can read it.
_SINCE_ROUTES = {"route": None, "approved_by": (), "escalated_at": None}


def snapshot(request: ConnectionRequest) -> str:
    """The request as JSON, for a message worded as of the moment it was written. It
    holds no secret: the code is not part of a request, only whether it has one."""
    values = dataclasses.asdict(request)
    for name, default in _SINCE_ROUTES.items():
        if getattr(request, name) == default:
            del values[name]
    if request.route is not None:
        values["route"] = request.route.to_json()
    for name in _MOMENTS:
        if values.get(name) is not None:
            values[name] = values[name].isoformat()
    return json.dumps(values, default=str)


def from_snapshot(text: str) -> ConnectionRequest | None:
    """The request a snapshot holds; None for an empty one (written by a migration)."""
    values: dict[str, Any] = json.loads(text)
    if not values:
        return None
    known = {field.name for field in dataclasses.fields(ConnectionRequest)}
    values = {k: v for k, v in values.items() if k in known}  # a later version's, ignored
    for name in _MOMENTS:
        if values.get(name) is not None:  # snapshots written before a moment existed lack it
            values[name] = datetime.fromisoformat(values[name])
    if values.get("route") is not None:
        values["route"] = Rule.from_json(values["route"])
    values["approved_by"] = tuple(values.get("approved_by", ()))
    values["fields"] = RequestFields(**values["fields"])
    values["status"] = Status(values["status"])
    if values["last_attempt"] is not None:
        values["last_attempt"] = CreateOutcome(values["last_attempt"])
    return ConnectionRequest(**values)


def to_item(row: OutboxRow) -> OutboxItem:
    notice = Notice(row.notice) if row.notice else None
    message = Message(Say(row.say), notice)
    if row.card_id is not None:
        return OutboxItem(
            id=row.id,
            request_id=None,
            message=message,
            snapshot=None,
            attempts=row.attempts or 0,
            parked=row.parked,
            card_id=row.card_id,
            note=None if row.snapshot == "{}" else row.snapshot,
        )
    return OutboxItem(
        id=row.id,
        request_id=row.request_id,
        message=message,
        snapshot=from_snapshot(row.snapshot),
        attempts=row.attempts or 0,
        parked=row.parked,
    )


TOLD = "told"
"""In a session's ``info``: the transaction wrote messages to the outbox."""


def incident_outbox_row(
    card_id: int, say: Say, at: datetime, *, due_at: datetime | None = None, note: str | None = None
) -> OutboxRow:
    """A message about an incident card; a thread note carries what it says (JSON)."""
    return OutboxRow(
        card_id=card_id,
        lane=say.lane.value,
        say=say.value,
        snapshot=note or "{}",
        created_at=at,
        due_at=due_at or at,
        attempts=0,
    )


def outbox_row(request: ConnectionRequest, message: Message, at: datetime) -> OutboxRow:
    """A message about ``request`` as it is now, due at once."""
    return OutboxRow(
        request_id=request.id,
        lane=message.say.lane.value,
        say=message.say.value,
        notice=message.notice.value if message.notice else None,
        snapshot=snapshot(request),
        created_at=at,
        due_at=at,
        attempts=0,
    )
