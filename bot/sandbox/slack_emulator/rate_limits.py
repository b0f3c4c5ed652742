"""Slack's rate limits, opt-in: so many calls of a method per window, then HTTP 429.

Slack limits each Web API method "per API method per workspace/team per app" by tier
(docs.slack.dev/apis/web-api/rate-limits): Tier 2 allows 20+ calls a minute, Tier 3 50+,
Tier 4 100+, and chat.postMessage (a special tier) about one message a second per
channel. Beyond the limit Slack answers HTTP 429 with ``Retry-After: <seconds>`` and
``{"ok": false, "error": "ratelimited"}``. slack_sdk raises ``SlackApiError`` on it, and
its ``AsyncRateLimitErrorRetryHandler`` sleeps ``int(Retry-After)`` (plus up to a second
of jitter) and tries again, so ``Retry-After`` is always a whole number of seconds here.

The emulator limits nothing unless a test asks (`FakeSlack.throttle`,
`FakeSlack.throttle_like_slack`). Calls refused with 429 do not count against the limit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Each method's documented tier as (calls, window in seconds, counted per channel). The
# tiers are from docs.slack.dev's method pages (as slack-ruby/slack-api-ref records them);
# Slack states minimums ("50+ per minute"), the emulator enforces exactly these.
SLACK_LIMITS: Mapping[str, tuple[int, float, bool]] = {
    "chat.postMessage": (1, 1.0, True),  # special: ~1 per second per channel
    "chat.update": (50, 60.0, False),  # Tier 3
    "chat.postEphemeral": (100, 60.0, False),  # Tier 4
    "conversations.open": (50, 60.0, False),  # Tier 3
    "conversations.info": (50, 60.0, False),  # Tier 3
    "apps.connections.open": (50, 60.0, False),  # Tier 3
    "usergroups.users.list": (20, 60.0, False),  # Tier 2
    "users.info": (100, 60.0, False),  # Tier 4
    "views.open": (100, 60.0, False),  # Tier 4
    "views.push": (100, 60.0, False),  # Tier 4
    "views.update": (100, 60.0, False),  # Tier 4
    "views.publish": (100, 60.0, False),  # Tier 4
}
"""auth.test (a special tier with no published figure) is left unlimited."""


@dataclass(frozen=True)
class Limit:
    """``calls`` per ``window`` seconds, per channel if ``per_channel``."""

    calls: int
    window: float
    per_channel: bool = False
    retry_after: int | None = None
    """The Retry-After to answer; None: the whole seconds until a call is allowed again."""


class RateLimiter:
    """Sliding-window limits per method (and channel), timed by the emulator's clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._limits: dict[str, Limit] = {}
        self._accepted: dict[tuple[str, str], deque[float]] = {}

    def set(self, method: str, limit: Limit) -> None:
        if limit.calls < 1 or limit.window <= 0:
            raise ValueError("a limit needs at least one call per positive window")
        if limit.retry_after is not None and limit.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        self._limits[method] = limit
        for key in [key for key in self._accepted if key[0] == method]:
            del self._accepted[key]

    def clear(self, method: str | None = None) -> None:
        """Lift the limit on ``method`` (None: on every method)."""
        for name in [m for m in self._limits if method is None or m == method]:
            del self._limits[name]
        for key in [k for k in self._accepted if method is None or k[0] == method]:
            del self._accepted[key]

    def check(self, method: str, args: Mapping[str, Any]) -> int | None:
        """Count a call of ``method``: None if it is within the limit, else the
        ``Retry-After`` seconds Slack would answer (the call is then not counted)."""
        limit = self._limits.get(method)
        if limit is None:
            return None
        channel = str(args.get("channel", "")) if limit.per_channel else ""
        now = self._clock()
        accepted = self._accepted.setdefault((method, channel), deque())
        while accepted and accepted[0] <= now - limit.window:
            accepted.popleft()
        if len(accepted) < limit.calls:
            accepted.append(now)
            return None
        if limit.retry_after is not None:
            return limit.retry_after
        return max(1, math.ceil(accepted[0] + limit.window - now))
