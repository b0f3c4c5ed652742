"""Sites: each request belongs to one Exalate node, and an open name is unique per node.

Every existing request lands in the ``default`` site through the column's server
default. The previous version keeps working during a rolling upgrade: it never names the
column, so its inserts get ``default`` too, and its names stay unique there. It still
checks a name across every site before inserting, which only refuses more, and it stops
being run before a second site is configured.

SQLite cannot drop a constraint in place: the table is rebuilt, rows and ids kept, while
``storage.schema`` holds its foreign keys off (see ``_references_unchecked``).

The downgrade fails while two sites hold open requests of one name: close one first.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connection_request") as table:
        table.add_column(sa.Column("site", sa.String(64), nullable=False, server_default="default"))
        table.drop_constraint("uq_connection_request_open_name", type_="unique")
        table.create_unique_constraint(
            "uq_connection_request_site_open_name", ["site", "open_name"]
        )
        table.create_index("ix_connection_request_site_status", ["site", "status"])


def downgrade() -> None:
    with op.batch_alter_table("connection_request") as table:
        table.drop_index("ix_connection_request_site_status")
        table.drop_constraint("uq_connection_request_site_open_name", type_="unique")
        table.create_unique_constraint("uq_connection_request_open_name", ["open_name"])
        table.drop_column("site")
