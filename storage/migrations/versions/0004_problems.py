"""Problems: ``error`` holds the kind of problem a request met, ``error_detail`` what the
other side said (Exalate's message, Slack's reason); the Slack side words them.

Rows written before keep their sentence in ``error``: it is shown as it is. During a
rolling upgrade the previous version shows a newer row's kind (``exalate``, …) where it
showed a sentence, until it is replaced.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connection_request") as table:
        table.add_column(sa.Column("error_detail", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("connection_request") as table:
        table.drop_column("error_detail")
