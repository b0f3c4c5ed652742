"""The service's IncidentNotifier over Slack's Web API: an incident card in its channel,
redrawn in place as its incidents change, and the notes in its thread.

Called by the outbox alone, which retries what Slack refused: so a refusal is raised as
``DeliveryFailed`` with Slack's reason and the wait a rate limit asks, as the approval
cards' notifier raises it, and the outbox parks or reschedules it the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.health.model import IncidentCard
from bot.health.notes import Note
from handlers.blocks.incidents import incident_card, incident_headline, incident_note
from handlers.blocks.text import Json, section
from handlers.outbound.errors import call_or_fail

log = logging.getLogger(__name__)


class SlackIncidentNotifier:
    """Posts and redraws incident cards and writes in their threads.

    ``default_owners`` are reminded of a card no route owns (``EXALATE_APPROVERS``);
    ``consoles`` is each site's Exalate console address, by site name, for the card's
    Open in Exalate button.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        default_owners: tuple[str, ...],
        consoles: Mapping[str, str],
    ) -> None:
        self._client = client
        self._default_owners = default_owners
        self._consoles = dict(consoles)

    async def post_incidents(self, card: IncidentCard) -> str:
        """Post the card in its channel; the reference is ``channel:ts``, as an approval
        card's, for ``chat.update`` and the thread."""
        text, body = self._drawn(card)
        response = await self._call(
            "chat_postMessage", channel=card.channel, text=text, blocks=body
        )
        return f"{response['channel']}:{response['ts']}"

    async def update_incidents(self, card: IncidentCard) -> None:
        """Redraw the card in place: the channel keeps one message per card."""
        if card.card_ref is None:
            return
        channel, ts = card.card_ref.split(":", 1)
        text, body = self._drawn(card)
        await self._call("chat_update", channel=channel, ts=ts, text=text, blocks=body)

    async def note_incident(self, card: IncidentCard, note: Note) -> None:
        """A reply under the card. Sent as a verbatim block besides its text, so a
        connection name that looks like an address does not become a link."""
        if card.card_ref is None:
            return
        channel, ts = card.card_ref.split(":", 1)
        text = incident_note(card, note, self._default_owners)
        await self._call(
            "chat_postMessage", channel=channel, thread_ts=ts, text=text, blocks=[section(text)]
        )

    def _drawn(self, card: IncidentCard) -> tuple[str, list[Json]]:
        return incident_headline(card), incident_card(card, self._consoles.get(card.site))

    async def _call(self, method: str, **arguments: object) -> dict[str, Any]:
        return await call_or_fail(self._client, method, **arguments)
