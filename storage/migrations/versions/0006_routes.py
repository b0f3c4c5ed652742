"""Routes: each request keeps the rule of who decides it (``route``, NULL for the default
approvers, which every earlier request keeps), who approved it so far (``approved_by``)
and when its escalation was called in (``escalated_at``).

The previous version ignores the new columns; a request it approves during a rolling
upgrade is approved by one person, as it always was.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connection_request") as table:
        table.add_column(sa.Column("route", sa.Text))
        table.add_column(sa.Column("approved_by", sa.Text, nullable=False, server_default=""))
        table.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("connection_request") as table:
        table.drop_column("escalated_at")
        table.drop_column("approved_by")
        table.drop_column("route")
