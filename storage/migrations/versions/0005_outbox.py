"""The outbox: every message to Slack is written with the change it reports and sent
later, retried until Slack takes it; and each request remembers the Slack view it was
submitted from, so a submission that arrives twice stores one request.

Requests awaiting approval whose card was never posted get a message to post it, and
are marked as posted by the outbox (``card_ref`` = ``posting:outbox``), which the
previous version reads as a post in progress and leaves alone: during a rolling
upgrade, no card is posted twice.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.Integer, nullable=False),
        sa.Column("lane", sa.String(16), nullable=False),
        sa.Column("say", sa.String(32), nullable=False),
        sa.Column("notice", sa.String(32)),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("due_at", Moment, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", Moment),
        sa.Column("parked", sa.String(64)),
        sa.Column("sent_at", Moment),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["connection_request.id"],
            name="fk_outbox_request_id_connection_request",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_unsent_due", "outbox", ["sent_at", "due_at"])
    op.create_index("ix_outbox_lane", "outbox", ["request_id", "lane", "id"])
    with op.batch_alter_table("connection_request") as table:
        table.add_column(sa.Column("view_id", sa.String(64)))
        table.create_unique_constraint("uq_connection_request_view_id", ["view_id"])
    # Cards still to post: the outbox posts them now.
    op.execute(
        "INSERT INTO outbox (request_id, lane, say, snapshot, created_at, due_at, attempts) "
        "SELECT id, 'card', 'post_card', '{}', updated_at, updated_at, 0 "
        "FROM connection_request WHERE status = 'pending_approval' "
        "AND (card_ref IS NULL OR card_ref LIKE 'posting:%')"
    )
    op.execute(
        "UPDATE connection_request SET card_ref = 'posting:outbox' "
        "WHERE status = 'pending_approval' AND (card_ref IS NULL OR card_ref LIKE 'posting:%')"
    )


def downgrade() -> None:
    op.execute("UPDATE connection_request SET card_ref = NULL WHERE card_ref = 'posting:outbox'")
    with op.batch_alter_table("connection_request") as table:
        table.drop_constraint("uq_connection_request_view_id", type_="unique")
        table.drop_column("view_id")
    op.drop_index("ix_outbox_lane", "outbox")
    op.drop_index("ix_outbox_unsent_due", "outbox")
    op.drop_table("outbox")
