"""What Slack said when it refused a call, in the one word the bot logs and records."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError


def slack_error(error: SlackApiError) -> str:
    """Slack's reason code (``not_in_channel``, …); never the request or the response."""
    return str(error.response.get("error", "unknown_error"))


def retry_after(error: SlackApiError) -> float | None:
    """The seconds a 429 asks to wait (``Retry-After``), if Slack said."""
    if error.response.status_code != 429:
        return None
    value = (error.response.headers or {}).get("Retry-After") or (error.response.headers or {}).get(
        "retry-after"
    )
    try:
        return max(float(value), 0.0) if value is not None else None
    except (TypeError, ValueError):
        return None
