"""What Slack said when it refused a call, in the one word the bot logs and records."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports import DeliveryFailed

log = logging.getLogger(__name__)


async def call_or_fail(client: AsyncWebClient, method: str, **arguments: object) -> dict[str, Any]:
    """Call the Web API, turning Slack's refusal into DeliveryFailed with its code, and
    the seconds a rate limit asks to wait (the outbox waits them, not this call)."""
    try:
        response = await getattr(client, method)(**arguments)
    except SlackApiError as error:
        code = slack_error(error)
        log.warning("slack_call_failed method=%s error=%s", method, code)
        raise DeliveryFailed(code, retry_after=retry_after(error)) from None
    return dict(response.data) if isinstance(response.data, dict) else {}


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
