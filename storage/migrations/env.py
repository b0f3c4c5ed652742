"""Alembic's entry point. The bot runs revisions itself (``storage.schema``), on a
connection it has already opened and locked, and hands that connection over here."""

from alembic import context

from storage.tables import Base

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite changes a table by copying it; batch mode does that
)
with context.begin_transaction():
    context.run_migrations()
