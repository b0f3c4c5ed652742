"""A look at Slack on the bot's own behalf: does it take the bot's token, and may the
bot post in the approvals channel? Asked once a tick, so readiness tells the truth
even when nobody writes, and what waited for a cause goes out as soon as it is gone."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.outbound.errors import slack_error

log = logging.getLogger(__name__)

TOKEN_REFUSALS = frozenset({"token_revoked", "invalid_auth", "account_inactive", "not_authed"})


@dataclass(frozen=True, slots=True)
class SlackLook:
    """What Slack said: why it refuses the token, or the channel (None: it does not);
    ``seen`` is False when Slack could not be asked (unreachable, or no scope to look)."""

    token_refused: str | None = None
    channel_refused: str | None = None
    seen: bool = True


class SlackProbe:
    """``auth.test`` and ``conversations.info`` of the approvals channel."""

    def __init__(self, client: AsyncWebClient, approval_channel: str) -> None:
        self._client = client
        self.channel = approval_channel

    async def look(self) -> SlackLook:
        try:
            await self._client.auth_test()
        except SlackApiError as error:
            reason = slack_error(error)
            if reason in TOKEN_REFUSALS:
                return SlackLook(token_refused=reason)
            return SlackLook(seen=False)
        except Exception as error:  # unreachable: that is no news about the token
            log.info("slack_probe_unavailable kind=%s", type(error).__name__)
            return SlackLook(seen=False)
        try:
            response = await self._client.conversations_info(channel=self.channel)
        except SlackApiError as error:
            reason = slack_error(error)
            if reason == "missing_scope":
                return SlackLook(seen=False)
            return SlackLook(channel_refused=reason)
        except Exception:
            return SlackLook(seen=False)
        channel = response.get("channel") or {}
        if channel.get("is_archived"):
            return SlackLook(channel_refused="is_archived")
        if channel.get("is_member") is False:
            return SlackLook(channel_refused="not_in_channel")
        return SlackLook()
