"""Moving the bot's history to another database: SQLite to PostgreSQL, say.

Requests and their audit trail are copied with their ids, through the models, so
timestamps, flags and sealed codes arrive as the bot wrote them whatever the two
databases store them as. The replica and lease tables are not copied: they describe
processes running now, not history. PostgreSQL's id sequences are moved past the copied
ids, so the next request does not collide with an old one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.tables import Base

_HISTORY = tuple(Base.metadata.tables[name] for name in ("connection_request", "audit_event"))
_BATCH = 1000  # rows per INSERT: bounded memory and statement size


class TargetNotEmpty(Exception):
    """The database to copy into holds requests already; nothing was copied."""


@dataclass(frozen=True, slots=True)
class Copied:
    requests: int
    audit_events: int


async def copy_history(source: AsyncEngine, target: AsyncEngine) -> Copied:
    """Copy every request and audit event of ``source`` into ``target``, in one
    transaction: all or nothing. Both must be at the newest revision; ``target`` must
    hold no request (TargetNotEmpty)."""
    counts: list[int] = []
    async with source.connect() as reading, target.begin() as writing:
        for table in _HISTORY:
            if await writing.scalar(sa.select(sa.func.count()).select_from(table)):
                raise TargetNotEmpty(
                    f"The database to copy into already holds rows in {table.name}; "
                    "copy only into a database that has just been migrated."
                )
        for table in _HISTORY:
            counts.append(await _copy_table(reading, writing, table))
    return Copied(*counts)


async def _copy_table(reading: AsyncConnection, writing: AsyncConnection, table: sa.Table) -> int:
    rows = await reading.stream(sa.select(table).order_by(table.c.id))
    copied = 0
    async for batch in rows.mappings().partitions(_BATCH):
        await writing.execute(table.insert(), [dict(row) for row in batch])
        copied += len(batch)
    if writing.dialect.name == "postgresql":
        await writing.execute(
            sa.select(
                sa.func.setval(
                    sa.func.pg_get_serial_sequence(table.name, "id"),
                    sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0) + 1).scalar_subquery(),
                    False,
                )
            )
        )
    return copied
