"""The ``[alerts]`` table of ``exalate-bot.toml``: where sync-health incidents go, and
when a sync queue counts as stuck.

Without the table the bot still watches every node (``/exalate health``, the metrics)
but posts no incident: where alerts go is the operator's choice. Every problem is
reported with its place, all at once, as the sites' and routes' are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bot.setting_checks import check_channel, parse_duration

QUEUE_THRESHOLD = 100
QUEUE_WINDOW = timedelta(minutes=10)
REMIND_AFTER = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Alerts:
    """Where incidents go and what opens them."""

    enabled: bool = False
    """Whether ``[alerts]`` is in the file: incidents are posted only then."""
    channel: str | None = None
    """Incidents of connections no route owns; None: ``EXALATE_APPROVAL_CHANNEL``."""
    queue_threshold: int = QUEUE_THRESHOLD
    """A sync queue above this, not lower than ``queue_window`` earlier, is stuck."""
    queue_window: timedelta = QUEUE_WINDOW
    remind_after: timedelta = REMIND_AFTER
    """An incident nobody acknowledged gets one reminder in its thread after this."""


class _AlertsEntry(BaseModel):
    """The ``[alerts]`` table as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str | None = None
    queue_threshold: int = QUEUE_THRESHOLD
    queue_window: timedelta = QUEUE_WINDOW
    remind_after: timedelta = REMIND_AFTER

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return None if value is None else check_channel(value)

    @field_validator("queue_threshold")
    @classmethod
    def _threshold(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("queue_window", "remind_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value)
        raise ValueError("must be a duration such as 10m, 1h or 1d")


def read_alerts(table: object, where: str) -> tuple[Alerts, list[str]]:
    """The alerts ``[alerts]`` describes (disabled when absent), and every problem."""
    if table is None:
        return Alerts(), []
    if not isinstance(table, dict):
        return Alerts(), [f"{where}: alerts must be written as an [alerts] table"]
    try:
        entry = _AlertsEntry.model_validate(table)
    except ValidationError as error:
        return Alerts(), [f"{where}: [alerts] {_says(p)}" for p in error.errors()]
    alerts = Alerts(
        enabled=True,
        channel=entry.channel,
        queue_threshold=entry.queue_threshold,
        queue_window=entry.queue_window,
        remind_after=entry.remind_after,
    )
    return alerts, []


def _says(problem: Mapping[str, Any]) -> str:
    """One of pydantic's problems with ``[alerts]``, as ``key what``."""
    key = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "extra_forbidden":
        return f"{key} is not a key this version knows"
    return f"{key} {str(problem['msg']).removeprefix('Value error, ')}"
