"""Baseline: the two tables as ``create_schema`` left them before migrations existed.

A database made by that code is stamped at this revision instead of running it.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen here on purpose: a revision describes the schema of its day, not today's models.
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "connection_request",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("local_short_name", sa.String(64), nullable=False),
        sa.Column("remote_short_name", sa.String(64), nullable=False),
        sa.Column("connection_name", sa.String(255), nullable=False),
        sa.Column("open_name", sa.String(255)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("project_key", sa.String(255), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("exalate_connection_id", sa.String(64)),
        sa.Column("card_ref", sa.String(128)),
        sa.Column("invitation_code", sa.LargeBinary),
        sa.Column("exalate_status", sa.String(64)),
        sa.Column("reminders_sent", sa.Integer, server_default="0", nullable=False),
        sa.Column("code_dm_ref", sa.String(128)),
        sa.Column("missed_polls", sa.Integer, server_default="0", nullable=False),
        sa.Column("name_absent_at", Moment),
        sa.Column("last_attempt", sa.String(16)),
        sa.PrimaryKeyConstraint("id", name="pk_connection_request"),
        sa.UniqueConstraint("open_name", name="uq_connection_request_open_name"),
    )
    op.create_index(
        "ix_connection_request_status_created", "connection_request", ["status", "created_at"]
    )
    op.create_index("ix_connection_request_requester", "connection_request", ["requester"])
    op.create_index("ix_connection_request_status", "connection_request", ["status"])
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("request_id", sa.Integer, nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("from_status", sa.String(32)),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_audit_event"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["connection_request.id"],
            name="fk_audit_event_request_id_connection_request",
        ),
    )
    op.create_index("ix_audit_event_request_id", "audit_event", ["request_id"])


def downgrade() -> None:
    op.drop_table("audit_event")
    op.drop_table("connection_request")
