"""The service's GroupDirectory over Slack's Web API: who is in an approver user group."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports import DeliveryFailed, DirectoryUnavailable
from handlers.outbound.errors import retry_after, slack_error

log = logging.getLogger(__name__)


class SlackGroupDirectory:
    """Resolves approver user groups with ``usergroups.users.list``."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def members(self, group_id: str) -> frozenset[str]:
        try:
            response = await self._client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as error:
            log.warning("usergroup_lookup_failed group=%s error=%s", group_id, slack_error(error))
            raise DirectoryUnavailable(group_id) from None
        except Exception as error:  # Slack unreachable, a timeout: Slack cannot say now
            log.warning("usergroup_lookup_failed group=%s kind=%s", group_id, type(error).__name__)
            raise DirectoryUnavailable(group_id) from None
        return frozenset(response.get("users") or [])


class SlackPeople:
    """Whether a person's account is deactivated, from ``users.info`` (users:read)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def deactivated(self, user_id: str) -> bool:
        """Raises DeliveryFailed when Slack asks to wait (a rate limit): the outbox then
        waits before sending, rather than sending unchecked."""
        try:
            response = await self._client.users_info(user=user_id)
        except SlackApiError as error:
            reason = slack_error(error)
            log.warning("user_lookup_failed error=%s", reason)
            if (wait := retry_after(error)) is not None:
                raise DeliveryFailed(reason, retry_after=wait) from None
            return False
        except Exception as error:  # Slack unreachable: it cannot say now
            log.warning("user_lookup_failed kind=%s", type(error).__name__)
            return False
        return bool((response.get("user") or {}).get("deleted"))
