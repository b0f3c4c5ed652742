"""Sync health: incidents, the cards that show them and their audit; what the watch of
each site remembers between polls; and outbox messages about an incident card instead
of a request (``outbox.card_id``, ``request_id`` then NULL).

The previous version does not know incident messages: during a rolling upgrade it
would drop one it took. Alerts are posted only with ``[alerts]`` in the file: add it
once every replica runs this version.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incident_card",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("owners", sa.Text),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("post_at", Moment, nullable=False),
        sa.Column("card_ref", sa.String(64)),
        sa.Column("acked_by", sa.String(32)),
        sa.Column("acked_at", Moment),
        sa.Column("snoozed_by", sa.String(32)),
        sa.Column("snoozed_until", Moment),
        sa.Column("reminded_at", Moment),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_incident_card"),
    )
    op.create_index("ix_incident_card_channel", "incident_card", ["channel", "post_at"])
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_id", sa.Integer, nullable=False),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("detail", sa.String(255), nullable=False),
        sa.Column("open_key", sa.String(320)),
        sa.Column("opened_at", Moment, nullable=False),
        sa.Column("resolved_at", Moment),
        sa.ForeignKeyConstraint(
            ["card_id"], ["incident_card.id"], name="fk_incident_card_id_incident_card"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incident"),
        sa.UniqueConstraint("open_key", name="uq_incident_open_key"),
    )
    op.create_index("ix_incident_card_id", "incident", ["card_id"])
    op.create_index("ix_incident_site", "incident", ["site"])
    op.create_table(
        "incident_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_id", sa.Integer, nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("actor", sa.String(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["incident_card.id"], name="fk_incident_audit_card_id_incident_card"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incident_audit"),
    )
    op.create_index("ix_incident_audit_card_id", "incident_audit", ["card_id"])
    op.create_table(
        "site_watch",
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("observed_at", Moment, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("view", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("site", name="pk_site_watch"),
    )
    with op.batch_alter_table("outbox") as table:
        table.alter_column("request_id", existing_type=sa.Integer, nullable=True)
        table.add_column(sa.Column("card_id", sa.Integer))
        table.create_foreign_key(
            "fk_outbox_card_id_incident_card", "incident_card", ["card_id"], ["id"]
        )
        table.create_index("ix_outbox_card_lane", ["card_id", "lane", "id"])


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE card_id IS NOT NULL")
    with op.batch_alter_table("outbox") as table:
        table.drop_index("ix_outbox_card_lane")
        table.drop_constraint("fk_outbox_card_id_incident_card", type_="foreignkey")
        table.drop_column("card_id")
        table.alter_column("request_id", existing_type=sa.Integer, nullable=False)
    op.drop_table("site_watch")
    op.drop_index("ix_incident_audit_card_id", "incident_audit")
    op.drop_table("incident_audit")
    op.drop_index("ix_incident_site", "incident")
    op.drop_index("ix_incident_card_id", "incident")
    op.drop_table("incident")
    op.drop_index("ix_incident_card_channel", "incident_card")
    op.drop_table("incident_card")
