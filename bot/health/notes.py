"""What an incident card's thread is told, as data: the Slack side words it
(``handlers/blocks/incidents.py``), and the outbox keeps it as JSON until it is sent."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

from bot.health.model import Kind


class Happened(StrEnum):
    """What a thread note is about."""

    OPENED = "opened"  # an incident joined a card already posted
    CHANGED = "changed"  # a connection's status changed while its incident is open
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    REMINDER = "reminder"  # open past remind_after, or past its snooze, unacknowledged


@dataclass(frozen=True, slots=True)
class Note:
    """One reply in a card's thread. ``subject``/``kind``/``detail`` name the incident
    (``before`` its earlier detail); ``actor`` who pressed; ``until`` a snooze's end;
    ``minutes`` how long a resolved incident lasted."""

    happened: Happened
    kind: Kind | None = None
    subject: str = ""
    detail: str = ""
    before: str = ""
    actor: str = ""
    until: datetime | None = None
    minutes: int | None = None

    def to_json(self) -> str:
        values = {k: v for k, v in asdict(self).items() if v not in (None, "")}
        if self.until is not None:
            values["until"] = self.until.isoformat()
        return json.dumps(values, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Note:
        data = json.loads(text)
        return cls(
            happened=Happened(data["happened"]),
            kind=Kind(data["kind"]) if data.get("kind") else None,
            subject=data.get("subject", ""),
            detail=data.get("detail", ""),
            before=data.get("before", ""),
            actor=data.get("actor", ""),
            until=datetime.fromisoformat(data["until"]) if data.get("until") else None,
            minutes=data.get("minutes"),
        )
