"""The incident card's listeners and ``/exalate health``, called alone with a stand-in
sync health and Slack: ack first, the service's refusal told privately in its own
words, values the bot never wrote refused, and the overview answered to the asker."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond

from bot.health.model import SiteView
from bot.sandbox.slack_emulator.block_kit import block_problems
from bot.service import Sites
from bot.service.health import CardGone, SiteOverview, StaleCard
from handlers import commands, incident_actions
from handlers import context as context_keys
from handlers.actions import SOMETHING_WENT_WRONG
from handlers.ids import Action
from tests.fakes.exalate import fake_site

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
BOB = "U0BOB"


class Slack:
    """Stands in for ack and respond: records each, and checks the order."""

    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []

    @property
    def ack(self) -> AsyncAck:
        return cast(AsyncAck, self._ack)

    @property
    def respond(self) -> AsyncRespond:
        return cast(AsyncRespond, self._respond)

    async def _ack(self, *args: Any, **kwargs: Any) -> None:
        self.acks.append(kwargs)

    async def _respond(self, **kwargs: Any) -> None:
        assert kwargs["response_type"] == "ephemeral"  # only the presser sees it
        assert self.acks, "answered before the ack"
        self.replies.append(kwargs)


class Watch:
    """The HealthWatch methods the listeners call, recorded; ``raises`` fails them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.raises: Exception | None = None

    async def acknowledge(self, card_id: int, user: str) -> None:
        self._called("acknowledge", card_id, user)

    async def snooze(self, card_id: int, user: str, choice: str) -> None:
        self._called("snooze", card_id, user, choice)

    async def overview(self, sites: tuple[str, ...]) -> list[SiteOverview]:
        self._called("overview", sites)
        return [
            SiteOverview(name, SiteView(name, NOW) if name == "eu" else None, []) for name in sites
        ]

    def _called(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.raises is not None:
            raise self.raises


@pytest.fixture(name="slack")
def fixture_slack() -> Slack:
    return Slack()


@pytest.fixture(name="watch")
def fixture_watch() -> Watch:
    return Watch()


def context_with(watch: Watch | None) -> AsyncBoltContext:
    service = type("Service", (), {"sites": Sites([fake_site("eu"), fake_site("us")])})()
    return AsyncBoltContext({context_keys.HEALTH: watch, "service": service})


@pytest.fixture(name="context")
def fixture_context(watch: Watch) -> AsyncBoltContext:
    return context_with(watch)


def press(action: Action, value: str, *, menu: bool = False) -> dict[str, Any]:
    pressed: dict[str, Any] = {"action_id": action.value}
    if menu:
        pressed["selected_option"] = {"value": value}
    else:
        pressed["value"] = value
    return {"user": {"id": BOB}, "actions": [pressed]}


class TestControls:
    async def test_acknowledge_acts_for_the_presser_and_says_nothing_more(
        self, slack: Slack, watch: Watch, context: AsyncBoltContext
    ) -> None:
        body = press(Action.INCIDENT_ACK, "9")
        await incident_actions.acknowledge_incidents(slack.ack, body, slack.respond, context)
        assert slack.acks == [{}]
        assert watch.calls == [("acknowledge", (9, BOB))]
        assert slack.replies == []

    async def test_snooze_takes_the_chosen_option(
        self, slack: Slack, watch: Watch, context: AsyncBoltContext
    ) -> None:
        body = press(Action.INCIDENT_SNOOZE, "9:4h", menu=True)
        await incident_actions.snooze_incidents(slack.ack, body, slack.respond, context)
        assert watch.calls == [("snooze", (9, BOB, "4h"))]
        assert slack.replies == []

    async def test_a_refusal_is_told_privately_in_the_services_words(
        self, slack: Slack, watch: Watch, context: AsyncBoltContext
    ) -> None:
        """The sentence keeps its mention: it names who acknowledged first."""
        watch.raises = StaleCard("<@U0ANNA> acknowledged it already.")
        body = press(Action.INCIDENT_ACK, "9")
        await incident_actions.acknowledge_incidents(slack.ack, body, slack.respond, context)
        assert [r["text"] for r in slack.replies] == ["<@U0ANNA> acknowledged it already."]
        assert slack.replies[0]["replace_original"] is False

    async def test_a_gone_card_is_told(
        self, slack: Slack, watch: Watch, context: AsyncBoltContext
    ) -> None:
        watch.raises = CardGone("This incident card does not exist any more.")
        body = press(Action.INCIDENT_SNOOZE, "9:1d", menu=True)
        await incident_actions.snooze_incidents(slack.ack, body, slack.respond, context)
        assert [r["text"] for r in slack.replies] == ["This incident card does not exist any more."]

    @pytest.mark.parametrize("value", ["", "x", "9:2h", "9:1h:extra", "1" * 18, "-9", "٩"])
    async def test_a_value_the_bot_never_wrote_changes_nothing(
        self, value: str, slack: Slack, watch: Watch, context: AsyncBoltContext
    ) -> None:
        body = press(Action.INCIDENT_SNOOZE, value, menu=True)
        await incident_actions.snooze_incidents(slack.ack, body, slack.respond, context)
        await incident_actions.acknowledge_incidents(
            slack.ack, press(Action.INCIDENT_ACK, value), slack.respond, context
        )
        assert watch.calls == []
        assert [r["text"] for r in slack.replies] == [incident_actions.NOT_OURS] * 2

    async def test_a_bot_not_watching_says_so(self, slack: Slack) -> None:
        body = press(Action.INCIDENT_ACK, "9")
        await incident_actions.acknowledge_incidents(
            slack.ack, body, slack.respond, context_with(None)
        )
        assert [r["text"] for r in slack.replies] == [incident_actions.NOT_WATCHED]

    async def test_a_failure_is_logged_by_kind_and_told(
        self,
        slack: Slack,
        watch: Watch,
        context: AsyncBoltContext,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        watch.raises = RuntimeError("db password=hunter2")
        with caplog.at_level(logging.ERROR):
            body = press(Action.INCIDENT_ACK, "9")
            await incident_actions.acknowledge_incidents(slack.ack, body, slack.respond, context)
        assert [r["text"] for r in slack.replies] == [SOMETHING_WENT_WRONG]
        assert caplog.messages == ["click_failed action=exalate_incident_ack kind=RuntimeError"]

    async def test_open_in_exalate_is_only_acked(self, slack: Slack) -> None:
        await incident_actions.open_in_exalate(slack.ack)
        assert slack.acks == [{}]


def command(text: str) -> dict[str, Any]:
    return {"text": text, "user_id": BOB, "trigger_id": "T1"}


class TestHealthCommand:
    async def test_every_site_privately(
        self, slack: Slack, watch: Watch, context: AsyncBoltContext
    ) -> None:
        await commands.exalate(slack.ack, command("health"), slack.respond, context)
        assert slack.acks == [{}]
        assert watch.calls == [("overview", (("eu", "us"),))]
        (reply,) = slack.replies
        assert block_problems(reply["blocks"]) == []
        assert "*us* · not polled yet" in str(reply["blocks"])

    async def test_one_site(self, slack: Slack, watch: Watch, context: AsyncBoltContext) -> None:
        await commands.exalate(slack.ack, command("health site=us"), slack.respond, context)
        assert watch.calls == [("overview", (("us",),))]

    async def test_an_unknown_site_is_a_usage_error(
        self, slack: Slack, watch: Watch, context: AsyncBoltContext
    ) -> None:
        await commands.exalate(slack.ack, command("health site=mars"), slack.respond, context)
        assert "There is no site mars" in slack.acks[0]["text"]
        assert watch.calls == []

    async def test_not_watched(self, slack: Slack) -> None:
        await commands.exalate(slack.ack, command("health"), slack.respond, context_with(None))
        assert slack.acks == [{"text": incident_actions.NOT_WATCHED}]

    async def test_help_names_it(self, slack: Slack, context: AsyncBoltContext) -> None:
        await commands.exalate(slack.ack, command("help"), slack.respond, context)
        usage = slack.acks[0]["text"]
        assert "`/exalate health [site=SITE]`" in usage
        assert usage.index("health [site") < usage.index("`/exalate help`")
