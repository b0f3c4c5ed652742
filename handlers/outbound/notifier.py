"""The service's Notifier over Slack's Web API: cards in the approvers' channel (the
request's route's, or the default one), their threads, and DMs to requesters and
approvers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.messages import Notice
from bot.approvals.model import ConnectionRequest
from bot.approvals.routes import card_channel
from handlers import blocks
from handlers.blocks.text import NAMING_SITES
from handlers.outbound.errors import call_or_fail

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def _drawing(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Draw what ``method`` sends naming sites as the notifier was told to, and leave
    the caller's context as it was."""

    @functools.wraps(method)
    async def drawn(*args: P.args, **kwargs: P.kwargs) -> T:
        notifier = args[0]
        assert isinstance(notifier, SlackNotifier)
        token = NAMING_SITES.set(notifier.name_sites)
        try:
            return await method(*args, **kwargs)
        finally:
            NAMING_SITES.reset(token)

    return drawn


class SlackNotifier:
    """Posts and updates approval cards and writes to requesters privately."""

    def __init__(
        self, client: AsyncWebClient, approval_channel: str, *, name_sites: bool = False
    ) -> None:
        self._client = client
        self._channel = approval_channel
        self.name_sites = name_sites
        """Whether messages name each request's site (the bot serves several)."""
        self._dm_channels: dict[str, str] = {}  # a user's DM with the bot never changes

    @_drawing
    async def post_card(self, request: ConnectionRequest) -> str:
        """Post the card; the returned reference is ``channel:ts`` for ``chat.update``."""
        response = await self._call(
            "chat_postMessage",
            channel=self.channel_of(request),
            text=blocks.card_text(request),
            blocks=blocks.approval_card(request),
        )
        return f"{response['channel']}:{response['ts']}"

    @_drawing
    async def update_card(self, request: ConnectionRequest) -> None:
        """Redraw the card in place, so the channel shows one message per request."""
        if request.card_ref is not None:
            text, body = blocks.card_text(request), blocks.approval_card(request)
            await self._edit(request.card_ref, text, body)

    @_drawing
    async def tell_requester(self, request: ConnectionRequest) -> None:
        """A DM fitting the request's state, with the button that state allows."""
        text, body = blocks.requester_message(request, self.channel_of(request))
        await self._dm(request.requester, text=text, blocks=body)

    @_drawing
    async def deliver_invitation(self, request: ConnectionRequest, code: str) -> str:
        """The code, in a DM to the requester alone; returns ``channel:ts`` of the DM."""
        text, body = blocks.invitation_dm(request, code)
        return await self._dm(request.requester, text=text, blocks=body)

    @_drawing
    async def close_invitation(self, request: ConnectionRequest) -> None:
        """Replace the code in its DM by what became of the invitation."""
        assert request.code_dm_ref is not None
        text = blocks.spent_invitation(request)
        await self._edit(request.code_dm_ref, text, [blocks.section(text)])

    @_drawing
    async def note_in_thread(self, request: ConnectionRequest, notice: Notice) -> None:
        """A reply under the card: the channel sees what happened without scrolling."""
        if request.card_ref is None:
            return
        channel, ts = request.card_ref.split(":", 1)
        # The escalation group is called in where the channel sees it, not only in a
        # thread it may never open.
        broadcast = {"reply_broadcast": True} if notice is Notice.ESCALATED else {}
        await self._call(
            "chat_postMessage",
            channel=channel,
            thread_ts=ts,
            text=blocks.thread_note(request, notice),
            **broadcast,
        )

    @_drawing
    async def remind_requester(self, request: ConnectionRequest) -> None:
        """A DM: the partner has not accepted yet."""
        text, body = blocks.invite_reminder(request)
        await self._dm(request.requester, text=text, blocks=body)

    @_drawing
    async def guide_approver(self, request: ConnectionRequest) -> None:
        """DM the approver who approved the wizard's values and the Paste button."""
        if request.decided_by is not None:
            text, body = blocks.console_guide(request)
            await self._dm(request.decided_by, text=text, blocks=body)

    def channel_of(self, request: ConnectionRequest) -> str:
        """Where the request's card goes: its route's channel, or the default one."""
        return card_channel(request.route, self._channel)

    async def _edit(self, ref: str, text: str, body: list[blocks.Json]) -> None:
        """Replace the message ``ref`` (``channel:ts``) in place."""
        channel, ts = ref.split(":", 1)
        await self._call("chat_update", channel=channel, ts=ts, text=text, blocks=body)

    async def _dm(self, user_id: str, **message: object) -> str:
        channel = self._dm_channels.get(user_id)
        if channel is None:
            opened = await self._call("conversations_open", users=user_id)
            channel = self._dm_channels[user_id] = str(opened["channel"]["id"])
        posted = await self._call("chat_postMessage", channel=channel, **message)
        return f"{posted['channel']}:{posted['ts']}"

    async def _call(self, method: str, **arguments: object) -> dict[str, Any]:
        return await call_or_fail(self._client, method, **arguments)
