"""The tables: requests (current state), audit events (append-only history), and the
replicas with the lease that picks which of them runs the background work.

These models are what the code reads and writes; the schema itself is built by the
Alembic revisions in ``storage/migrations``, which must agree with them (a test checks).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.approvals.model import DEFAULT_SITE


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; SQLite would otherwise hand back naive ones."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so constraint names are stable."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class RequestRow(Base):
    """One connection request.

    ``open_name`` holds the lower-cased connection name while the request is open and
    NULL afterwards; the unique constraint on it and ``site`` is what stops two open
    requests from claiming one name on one Exalate node, even when two people submit at
    the same instant. Another site may hold an open request of the same name: its
    connections live on another node.
    """

    __tablename__ = "connection_request"
    __table_args__ = (
        # Status lists filter by state and show the newest first.
        sa.Index("ix_connection_request_status_created", "status", "created_at"),
        # One site's open requests, and its status lists.
        sa.Index("ix_connection_request_site_status", "site", "status"),
        sa.UniqueConstraint("site", "open_name", name="uq_connection_request_site_open_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    version: Mapped[int] = mapped_column(default=1)
    requester: Mapped[str] = mapped_column(sa.String(64), index=True)
    local_short_name: Mapped[str] = mapped_column(sa.String(64))
    remote_short_name: Mapped[str] = mapped_column(sa.String(64))
    connection_name: Mapped[str] = mapped_column(sa.String(255))
    open_name: Mapped[str | None] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    project_key: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    """The kind of problem the request met (``bot.approvals.model.Problem``); a sentence
    in rows written before revision 0004."""
    error_detail: Mapped[str | None] = mapped_column(sa.Text)
    """What the other side said of it: Exalate's message, Slack's reason code."""
    exalate_connection_id: Mapped[str | None] = mapped_column(sa.String(64))
    card_ref: Mapped[str | None] = mapped_column(sa.String(128))
    invitation_code: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    exalate_status: Mapped[str | None] = mapped_column(sa.String(64))
    reminders_sent: Mapped[int] = mapped_column(default=0, server_default="0")
    code_dm_ref: Mapped[str | None] = mapped_column(sa.String(128))
    missed_polls: Mapped[int] = mapped_column(default=0, server_default="0")
    name_absent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt: Mapped[str | None] = mapped_column(sa.String(16))
    initiated_by: Mapped[str | None] = mapped_column(sa.String(64))
    """The replica creating the connection while the request is ``initiating``."""
    site: Mapped[str] = mapped_column(sa.String(64), server_default=DEFAULT_SITE)
    """The Exalate node that creates the connection; every request made before sites
    existed, or by a replica that does not know them yet, is in the default one."""
    view_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    """The Slack view (the form) the request was submitted from: one request a view,
    however often that submission arrives."""
    route: Mapped[str | None] = mapped_column(sa.Text)
    """The rule of who decides it (``Rule`` as JSON), taken when it was made; NULL: the
    default approvers."""
    approved_by: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    """The user ids that approved it, space-separated, in order. Only ever extended by a
    compare-and-set on its previous value, so the count is exact."""
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxRow(Base):
    """A message to send to Slack about a request, written with the change it reports.

    Sent by whichever replica claims it (``claimed_by`` until ``claimed_until``), in
    order per request and lane; ``due_at`` is when it may next be tried, ``parked`` the
    reason while it waits for a cause that will not heal by itself; ``sent_at`` once
    Slack took it (or it was left out, a newer redraw of its card going instead).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_unsent_due", "sent_at", "due_at"),
        sa.Index("ix_outbox_lane", "request_id", "lane", "id"),
        sa.Index("ix_outbox_card_lane", "card_id", "lane", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("connection_request.id"))
    card_id: Mapped[int | None] = mapped_column(sa.ForeignKey("incident_card.id"))
    """The incident card a message is about, instead of a request."""
    lane: Mapped[str] = mapped_column(sa.String(16))
    say: Mapped[str] = mapped_column(sa.String(32))
    notice: Mapped[str | None] = mapped_column(sa.String(32))
    snapshot: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parked: Mapped[str | None] = mapped_column(sa.String(64))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """One transition: who moved which request from where to where, and when."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("connection_request.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(sa.String(64))
    from_status: Mapped[str | None] = mapped_column(sa.String(32))
    to_status: Mapped[str] = mapped_column(sa.String(32))
    note: Mapped[str | None] = mapped_column(sa.Text)


class ReplicaRow(Base):
    """A running bot process, and when it last said it was alive."""

    __tablename__ = "replica"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int]
    pid_namespace: Mapped[str] = mapped_column(sa.String(255))
    """Where ``pid`` means this process: the kernel's boot id and PID namespace."""
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LeaseRow(Base):
    """A job only one replica may run at a time, and the replica that runs it now."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(sa.String(64))
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IncidentCardRow(Base):
    """A card in an alerts channel showing incidents that opened together on a site;
    who acknowledged or snoozed it, and its one reminder."""

    __tablename__ = "incident_card"
    __table_args__ = (sa.Index("ix_incident_card_channel", "channel", "post_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(sa.String(32))
    channel: Mapped[str] = mapped_column(sa.String(32))
    owners: Mapped[str | None] = mapped_column(sa.Text)
    """The owning route's rule (JSON); NULL: the default approvers."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    post_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When it may be posted: a channel gets at most one new card a minute."""
    card_ref: Mapped[str | None] = mapped_column(sa.String(64))
    acked_by: Mapped[str | None] = mapped_column(sa.String(32))
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snoozed_by: Mapped[str | None] = mapped_column(sa.String(32))
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=0, server_default="0")


class IncidentRow(Base):
    """One condition on one site from its opening to its resolution. ``open_key`` is set
    while it is open: the unique index lets one incident per condition be open, whoever
    writes it."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    card_id: Mapped[int] = mapped_column(sa.ForeignKey("incident_card.id"), index=True)
    site: Mapped[str] = mapped_column(sa.String(32), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str] = mapped_column(sa.String(255))
    detail: Mapped[str] = mapped_column(sa.String(255))
    open_key: Mapped[str | None] = mapped_column(sa.String(320), unique=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IncidentAuditRow(Base):
    """Who did what to an incident card, and when: the bot's openings and resolutions,
    and every press of its buttons, refused ones included."""

    __tablename__ = "incident_audit"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    card_id: Mapped[int] = mapped_column(sa.ForeignKey("incident_card.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(sa.String(32))
    note: Mapped[str] = mapped_column(sa.Text)


class SiteWatchRow(Base):
    """What the watch of a site remembers between polls (``bot.health.watch``), and the
    last poll's view of it for ``/exalate health`` on any replica."""

    __tablename__ = "site_watch"

    site: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(sa.Text)
    view: Mapped[str] = mapped_column(sa.Text)
