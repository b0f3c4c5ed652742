"""Rows to domain values and back: requests, audit events, card claims."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.approvals.model import (
    AuditEvent,
    ConnectionRequest,
    CreateOutcome,
    RequestFields,
    Status,
)
from storage.tables import AuditRow, RequestRow

# card_ref while one process posts the card ("posting:<when>"); never leaves storage.
POSTING = "posting:"


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
