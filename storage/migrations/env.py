"""Alembic's entry point, for two callers.

The bot runs the revisions itself (``storage.schema``), on a connection it has already
opened, locked and begun, and hands that connection over in
``config.attributes["connection"]``.

An operator's ``alembic -c alembic.ini …`` (``current``, ``history``, ``upgrade``,
``revision --autogenerate``) hands over nothing: the database is then DATABASE_URL, read
as the bot reads it (the environment, then ``.env``; by default the SQLite file
``exalate-bot.db``), reached with the bot's async engine and upgraded as the bot
upgrades it (one upgrader at a time, one transaction). With ``--sql`` no database is
reached: the SQL is written out for the URL's dialect. ``exalate-bot migrate --sql``
gives its URL in ``config.attributes["url"]``.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from bot.config import load_database_settings
from storage.db import explained, make_engine
from storage.schema import upgrading
from storage.tables import Base


def _run_on(connection: Connection) -> None:
    """Run the command's revisions on ``connection``. Batch mode because SQLite changes
    a table by copying it."""
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _write_sql(url: str) -> None:
    """``--sql``: the statements for ``url``'s dialect, values written in, no database
    reached."""
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        render_as_batch=True,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    """Reach ``url`` as the bot does: a private SQLite file, a password never shown."""
    engine = make_engine(url)
    try:
        async with explained(url), upgrading(engine) as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def _database_url() -> str:
    url = context.config.attributes.get("url")
    return str(url) if url else load_database_settings().database_url


def _main() -> None:
    config = context.config
    handed_over: Connection | None = config.attributes.get("connection")
    if handed_over is not None:
        _run_on(handed_over)
        return
    if config.config_file_name is not None and config.file_config.has_section("loggers"):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        _write_sql(_database_url())
    else:
        asyncio.run(_run_online(_database_url()))


_main()
