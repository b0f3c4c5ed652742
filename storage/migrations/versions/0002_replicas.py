"""Several replicas: who is alive, who runs the background work, who is creating what.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "replica",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("pid_namespace", sa.String(255), nullable=False),
        sa.Column("started_at", Moment, nullable=False),
        sa.Column("heartbeat_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replica"),
    )
    op.create_table(
        "lease",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(64)),
        sa.Column("taken_at", Moment),
        sa.PrimaryKeyConstraint("name", name="pk_lease"),
    )
    with op.batch_alter_table("connection_request") as table:
        table.add_column(sa.Column("initiated_by", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("connection_request") as table:
        table.drop_column("initiated_by")
    op.drop_table("lease")
    op.drop_table("replica")
