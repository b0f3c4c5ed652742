"""What Slack said when it refused a call, in the one word the bot logs and records."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError


def slack_error(error: SlackApiError) -> str:
    """Slack's reason code (``not_in_channel``, …); never the request or the response."""
    return str(error.response.get("error", "unknown_error"))
