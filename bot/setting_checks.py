"""Checks of setting values that the environment and ``exalate-bot.toml`` both give:
Slack channel and approver ids, and durations. Each raises ValueError with what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

APPROVER_ID = re.compile(r"[UWS][A-Z0-9]{2,}")
PROJECT_PATTERN = re.compile(r"[A-Z*][A-Z0-9_*-]*")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_DURATION = re.compile(r"(?P<amount>\d+(\.\d+)?)\s*(?P<unit>[smhd])?")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Slack shows ids in few places; an operator who gave a name needs to know where.
FIND_CHANNEL_ID = (
    "To find it in Slack: open the channel, click its name (channel details); the "
    "channel ID is at the bottom."
)
FIND_APPROVER_IDS = (
    "To find them in Slack: a user's profile → ⋮ → Copy member ID; a user group's S… id "
    "on the user group's page, or from the API method usergroups.list."
)


def check_channel(value: str) -> str:
    """A channel id such as C0123456789."""
    if CHANNEL_ID.fullmatch(value):
        return value
    if value.startswith("#"):
        wrong = "a channel's name, not its id"
    elif re.fullmatch(r"[CGD][A-Z0-9]?", value):
        wrong = "too short for a channel id"
    else:
        wrong = "not a channel id"
    raise ValueError(f"is {value!r}, {wrong}; give one such as C0123456789. {FIND_CHANNEL_ID}")


def check_approvers(value: object) -> tuple[str, ...]:
    """User and user-group ids, from a comma-separated string or a list; at least one."""
    items: Iterable[object] = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    ids = tuple(str(item).strip() for item in items if str(item).strip())
    if not ids:
        raise ValueError(
            "names no approver; give user ids such as U0123456789 and/or user-group "
            f"ids such as S0123456789, comma-separated. {FIND_APPROVER_IDS}"
        )
    if bad := [item for item in ids if not APPROVER_ID.fullmatch(item)]:
        raise ValueError(
            f"has {', '.join(map(repr, bad))}: not a user id such as U0123456789 or a "
            "user-group id such as S0123456789 (names and @handles do not work). "
            f"{FIND_APPROVER_IDS}"
        )
    return ids


def parse_duration(value: str) -> timedelta:
    """``7d``, ``36h``, ``90m``, ``45s`` or a number of seconds; longer than zero."""
    match = _DURATION.fullmatch(value.strip().lower())
    if match is None:
        raise ValueError("must be a duration such as 7d, 36h, 90m or 3600 (seconds)")
    amount, unit = float(match["amount"]), match["unit"] or "s"
    duration = timedelta(seconds=amount * _UNIT_SECONDS[unit])
    if duration <= timedelta(0):
        raise ValueError("must be longer than zero")
    return duration


def check_project_patterns(value: object) -> tuple[str, ...]:
    """Project keys or ``*``-patterns, from a comma-separated string or a list."""
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    patterns = tuple(str(item).strip().upper() for item in items if str(item).strip())
    if bad := [p for p in patterns if not PROJECT_PATTERN.fullmatch(p)]:
        raise ValueError(f"not a project key or *-pattern: {', '.join(bad)}")
    return patterns


TOKEN_MIN = 8
"""Shorter is no Jira personal access token (Jira's have 44 characters), and a secret
that short would be redacted from every log line it happens to occur in."""


def check_token_length(token: str) -> None:
    """ValueError unless ``token`` can be a personal access token; never shows it."""
    if len(token) < TOKEN_MIN:
        count = "1 character" if len(token) == 1 else f"{len(token)} characters"
        raise ValueError(
            f"the token has {count}: too short to be a Jira personal access token "
            "(Jira's have 44); copy the whole token"
        )
