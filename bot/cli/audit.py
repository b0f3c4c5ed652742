"""``exalate-bot audit export``: the audit trail as CSV or JSON, for auditors and scripts."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from bot.config import SettingsError
from storage import RequestRepository, explained, has_schema, make_engine, make_sessionmaker
from storage.db import sqlite_file

COLUMNS = (
    "at",
    "request_id",
    "connection_name",
    "site",
    "actor",
    "from_status",
    "to_status",
    "note",
)


async def export(database_url: str, output_format: str, since: datetime | None) -> str:
    """The trail from ``since`` on, oldest first, rendered as ``csv`` or ``json``."""
    if (path := sqlite_file(database_url)) is not None and not path.exists():
        raise SettingsError(f"DATABASE_URL names {path}, which does not exist.")
    engine = make_engine(database_url)
    try:
        async with explained(database_url):
            if not await has_schema(engine):
                raise SettingsError("DATABASE_URL holds no exalate-bot tables.")
            events = await RequestRepository(make_sessionmaker(engine)).audit_trail(since)
    finally:
        await engine.dispose()
    records = [
        {
            "at": event.at.isoformat(),
            "request_id": event.request_id,
            "connection_name": name,
            "site": site,
            "actor": event.actor,
            "from_status": event.from_status.value if event.from_status else "",
            "to_status": event.to_status.value,
            "note": event.note or "",
        }
        for event, name, site in events
    ]
    if output_format == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()
