"""SlackIncidentNotifier against the Slack emulator, through the real ``AsyncWebClient``
over loopback: the card is posted where it belongs and takes Slack's Block Kit check,
it is redrawn in place, notes go to its thread, and Slack's refusals reach the outbox as
``DeliveryFailed`` with Slack's reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.health.model import Condition, Incident, IncidentCard, Kind
from bot.health.notes import Happened, Note
from bot.ports import DeliveryFailed
from bot.sandbox.slack_emulator import FakeSlack
from handlers.ids import Action
from handlers.outbound.incident_notifier import SlackIncidentNotifier

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CONSOLE = "https://jira-eu.example.test"
CARD = IncidentCard(
    9,
    "eu",
    "C0ALERTS",
    None,
    NOW,
    (Incident(1, 9, Condition("eu", Kind.CONNECTION, "<!channel> acme", "Error"), NOW),),
)


@pytest.fixture(name="fake")
async def fixture_fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(users={"U0ANNA"}, channels={"C0ALERTS"}) as fake:
        yield fake


@pytest.fixture(name="notifier")
def fixture_notifier(fake: FakeSlack) -> SlackIncidentNotifier:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
    return SlackIncidentNotifier(client, default_owners=("U0ANNA",), consoles={"eu": CONSOLE})


async def test_post_update_and_thread(fake: FakeSlack, notifier: SlackIncidentNotifier) -> None:
    ref = await notifier.post_incidents(CARD)
    channel, ts = ref.split(":", 1)
    assert channel == "C0ALERTS"
    posted = fake.messages[(channel, ts)]
    assert "<!channel>" not in posted["text"]
    assert "acme" in posted["text"]
    actions = [
        e["action_id"] for b in posted["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert Action.INCIDENT_ACK.value in actions

    resolved = replace(
        CARD,
        card_ref=ref,
        incidents=(replace(CARD.incidents[0], resolved_at=NOW + timedelta(minutes=42)),),
    )
    await notifier.update_incidents(resolved)
    redrawn = fake.messages[(channel, ts)]
    assert redrawn["text"].startswith(":white_check_mark: Resolved after 42 min")
    actions = [
        e["action_id"] for b in redrawn["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert actions == [Action.INCIDENT_OPEN.value]

    await notifier.note_incident(resolved, Note(Happened.REMINDER))
    reply = fake.calls_to("chat.postMessage")[-1].args
    assert reply["thread_ts"] == ts
    assert reply["channel"] == channel
    assert reply["text"].endswith("nobody acknowledged it: <@U0ANNA>")
    assert len(fake.messages) == 2  # the card, redrawn, and one reply


async def test_nothing_to_redraw_or_note_before_the_card_is_posted(
    fake: FakeSlack, notifier: SlackIncidentNotifier
) -> None:
    await notifier.update_incidents(CARD)
    await notifier.note_incident(CARD, Note(Happened.REMINDER))
    assert fake.calls == []


async def test_a_refused_channel_is_delivery_failed_with_slacks_reason(
    notifier: SlackIncidentNotifier,
) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        await notifier.post_incidents(replace(CARD, channel="C0ELSEWHERE"))
    assert str(failed.value) == "not_in_channel"
    assert failed.value.retry_after is None


async def test_a_rate_limit_says_how_long_to_wait(
    fake: FakeSlack, notifier: SlackIncidentNotifier
) -> None:
    ref = await notifier.post_incidents(CARD)
    fake.rate_limit("chat.update", retry_after=7)
    with pytest.raises(DeliveryFailed) as failed:
        await notifier.update_incidents(replace(CARD, card_ref=ref))
    assert str(failed.value) == "ratelimited"
    assert failed.value.retry_after == 7.0
