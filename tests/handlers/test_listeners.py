"""The button and form listeners called alone, with a stand-in service and Slack: what
each checks before its ack, what it does after, and how every refusal is told.

The e2e suite drives the same listeners through Bolt; these reach the paths it cannot
provoke on demand (a check past Slack's budget, a failure after the ack).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from bot.approvals.errors import NotAllowed
from bot.approvals.model import ConnectionRequest, RequestFields, Status
from bot.approvals.routes import Rule
from bot.service import Sites
from handlers import actions, commands, views
from handlers.context import BotParts, codes_in, listings_in, service_in
from handlers.ids import Action, Block, View
from tests.fakes.exalate import fake_site

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REQUEST = ConnectionRequest(
    7,
    Status.PENDING_APPROVAL,
    3,
    RequestFields("acme", "partner", "acme_to_partner", "", "SUP"),
    "U0ALICE",
    NOW,
    NOW,
)
SEEN = "0123456789abcdef"
BOB = "U0BOB"


class Calls:
    """Stands in for ack, respond and the Web API client: records every call."""

    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self.replies: list[str] = []
        self.opened: list[dict[str, Any]] = []
        self.open_fails = False

    @property
    def ack(self) -> AsyncAck:
        return cast(AsyncAck, self._ack)

    @property
    def respond(self) -> AsyncRespond:
        return cast(AsyncRespond, self._respond)

    async def _ack(self, **kwargs: Any) -> None:
        self.acks.append(kwargs)

    async def _respond(self, **kwargs: Any) -> None:
        assert kwargs["response_type"] == "ephemeral"  # only the clicker sees it
        assert self.acks, "answered before the ack"
        self.replies.append(kwargs["text"])

    async def views_open(self, **kwargs: Any) -> None:
        if self.open_fails:
            refused = {"ok": False, "error": "expired_trigger_id"}
            raise SlackApiError("refused", refused)  # type: ignore[no-untyped-call]
        self.opened.append(kwargs["view"])


class Service:
    """The ConnectionService methods the listeners call, each recorded.

    ``outcome[name]`` changes what a method does: an exception is raised, a number of
    seconds is waited first; otherwise it returns ``REQUEST``.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.outcome: dict[str, BaseException | float] = {}
        self.returns: dict[str, ConnectionRequest] = {}
        self.sites = Sites([fake_site()])

    def rule_of(self, request: ConnectionRequest) -> Rule:
        return request.route or Rule((BOB,))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def method(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            outcome = self.outcome.get(name)
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not None:
                await asyncio.sleep(outcome)
            if name == "reveal_code":
                return (REQUEST, "Q09ERQ==")
            return self.returns.get(name, REQUEST)

        return method

    def called(self) -> list[str]:
        return [name for name, _args, _kwargs in self.calls]


@pytest.fixture(name="slack")
def _slack() -> Calls:
    return Calls()


@pytest.fixture(name="service")
def _service() -> Service:
    return Service()


@pytest.fixture(name="context")
def _context(slack: Calls, service: Service) -> AsyncBoltContext:
    # One recording fake stands for the request use cases, the code's and the listings.
    return AsyncBoltContext(
        {"service": service, "codes": service, "listings": service, "client": slack}
    )


def click(action: Action, value: str) -> dict[str, Any]:
    return {
        "user": {"id": BOB},
        "trigger_id": "T1",
        "actions": [{"action_id": action.value, "value": value}],
    }


def form(callback: View, metadata: str, values: dict[str, Any]) -> dict[str, Any]:
    state = {block: {"input": value} for block, value in values.items()}
    return {"callback_id": callback.value, "private_metadata": metadata, "state": {"values": state}}


def reason_form(reason: str, metadata: str = f"7:{SEEN}", *, everything: bool = False) -> Any:
    return form(
        View.REJECT,
        metadata,
        {
            Block.REASON.value: {"value": reason},
            Block.REJECT_ALL.value: {"selected_options": [{"value": "all"}] if everything else []},
        },
    )


class TestClicks:
    async def test_approve_applies_to_the_request_as_shown(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        service.returns["approve"] = replace(REQUEST, status=Status.INITIATING)
        body = click(Action.APPROVE, f"7:{SEEN}")
        await actions.approve(slack.ack, body, slack.respond, context)
        assert slack.acks == [{}]
        assert service.calls == [("approve", (7, BOB), {"seen": SEEN})]
        assert slack.replies == []  # the card shows the news

    async def test_an_approval_short_of_the_count_is_confirmed_privately(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        """The approver learns their approval counted, and how many more are needed."""
        two = Rule(("U0BOB", "U0CAROL", "S0LEADS"), approvals=3, route=1)
        service.returns["approve"] = replace(REQUEST, route=two, approved_by=(BOB,))
        await actions.approve(slack.ack, click(Action.APPROVE, f"7:{SEEN}"), slack.respond, context)
        assert len(slack.replies) == 1
        assert "is counted: 1 of 3" in slack.replies[0]
        assert "2 more approvals" in slack.replies[0]

    @pytest.mark.parametrize("value", ["7", "7:nothex", "x", ""])
    async def test_a_value_the_bot_never_wrote_changes_nothing(
        self, value: str, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        """A decision button without the card's fingerprint is as forged as one without an
        id: the clicker is told, privately, and nothing is called."""
        await actions.approve(slack.ack, click(Action.APPROVE, value), slack.respond, context)
        assert slack.replies == [actions.NOT_OURS]
        assert service.calls == []

    async def test_a_failure_after_the_ack_is_logged_by_kind_and_told(
        self,
        slack: Calls,
        service: Service,
        context: AsyncBoltContext,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        service.outcome["cancel"] = RuntimeError("db password=hunter2")
        with caplog.at_level(logging.ERROR):
            await actions.cancel(slack.ack, click(Action.CANCEL, "7"), slack.respond, context)
        assert slack.replies == [actions.SOMETHING_WENT_WRONG]
        assert caplog.messages == ["click_failed action=exalate_cancel kind=RuntimeError"]

    async def test_reject_checks_the_clicker_may_then_opens_the_reason_form(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        await actions.reject(slack.ack, click(Action.REJECT, f"7:{SEEN}"), slack.respond, context)
        assert service.calls == [("check_can_reject", (7, BOB), {"seen": SEEN})]
        assert [view["callback_id"] for view in slack.opened] == [View.REJECT.value]

    async def test_a_check_past_the_budget_opens_no_form(
        self,
        slack: Calls,
        service: Service,
        context: AsyncBoltContext,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The trigger_id would have expired by the time the form opened: the clicker is
        asked to click again instead."""
        monkeypatch.setattr("handlers.guard.SLACK_BUDGET_SECONDS", 0.05)
        service.outcome["check_can_paste"] = 5.0
        await actions.paste_code(slack.ack, click(Action.PASTE_CODE, "7"), slack.respond, context)
        assert slack.acks == [{}]
        assert slack.opened == []
        assert slack.replies == [actions.TOO_SLOW]

    async def test_a_refusal_by_the_check_is_explained(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        service.outcome["own_request"] = NotAllowed("Only the requester can ask again.")
        body = click(Action.REREQUEST, "7")
        await actions.request_again(slack.ack, body, slack.respond, context)
        assert slack.replies == ["Only the requester can ask again."]
        assert slack.opened == []

    async def test_a_form_slack_will_not_open_is_explained(
        self, slack: Calls, context: AsyncBoltContext
    ) -> None:
        slack.open_fails = True
        body = click(Action.REREQUEST, "7")
        await actions.request_again(slack.ack, body, slack.respond, context)
        assert slack.replies == ["Slack would not open the form in time; click again."]

    async def test_resend_tells_the_clicker_how_it_went(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        await actions.resend_code(slack.ack, click(Action.RESEND, "7"), slack.respond, context)
        assert service.called() == ["resend_code"]
        assert slack.replies == [
            "Sending the invitation code to <@U0ALICE> by DM; the card says when it arrives."
        ]

    async def test_show_code_answers_in_a_modal_even_a_refusal(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        """App Home gives no response_url, so the reason there is no code is a modal too."""
        service.outcome["reveal_code"] = NotAllowed("Only the requester can see the code.")
        await actions.show_code(slack.ack, click(Action.SHOW_CODE, "7"), context)
        assert "Only the requester can see the code." in str(slack.opened)

    async def test_show_code_shows_the_code(self, slack: Calls, context: AsyncBoltContext) -> None:
        await actions.show_code(slack.ack, click(Action.SHOW_CODE, "7"), context)
        assert [view["callback_id"] for view in slack.opened] == [View.CODE.value]
        assert "Q09ERQ==" in str(slack.opened)


class TestCommand:
    async def test_a_failure_after_the_ack_is_logged_by_kind_only(
        self,
        slack: Calls,
        service: Service,
        context: AsyncBoltContext,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Bolt would log the whole exception, whose text may quote anything."""
        service.outcome["cancel_named"] = RuntimeError("db password=hunter2")
        command = {"text": "cancel acme_to_partner", "user_id": BOB, "trigger_id": "T1"}
        with caplog.at_level(logging.ERROR):
            await commands.exalate(slack.ack, command, slack.respond, context)
        assert slack.acks == [{}]
        assert caplog.messages == ["command_failed sub_command=cancel kind=RuntimeError"]


class TestForms:
    async def test_a_rejection_is_checked_before_the_ack_then_done(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        body = {"user": {"id": BOB}}
        await views.submit_rejection(slack.ack, body, reason_form(" Squatted "), context)
        assert slack.acks == [{}]
        assert service.calls == [
            ("check_can_reject", (7, BOB), {"seen": SEEN}),
            ("reject", (7, BOB, "Squatted"), {"seen": SEEN}),
        ]

    async def test_every_open_request_of_the_requester_when_the_form_says_so(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        view = reason_form("Flood", everything=True)
        await views.submit_rejection(slack.ack, {"user": {"id": BOB}}, view, context)
        assert service.called() == ["check_can_reject", "reject_all_from"]

    @pytest.mark.parametrize(
        ("reason", "metadata", "problem"),
        [
            ("  ", "7", "Give a reason; the requester will read it."),
            ("a\x00b", f"7:{SEEN}", "The reason contains a NUL character; remove it."),
            ("x" * 1001, f"7:{SEEN}", "Keep the reason under 1000 characters."),
            ("Squatted", "7", "This form does not belong to any request."),
        ],
    )
    async def test_problems_are_answered_in_the_form(
        self,
        reason: str,
        metadata: str,
        problem: str,
        slack: Calls,
        service: Service,
        context: AsyncBoltContext,
    ) -> None:
        view = reason_form(reason, metadata)
        await views.submit_rejection(slack.ack, {"user": {"id": BOB}}, view, context)
        assert slack.acks == [{"response_action": "errors", "errors": {"reason": problem}}]
        assert service.calls == []

    async def test_a_check_past_the_budget_changes_nothing(
        self,
        slack: Calls,
        service: Service,
        context: AsyncBoltContext,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr("handlers.guard.SLACK_BUDGET_SECONDS", 0.05)
        service.outcome["check_can_reject"] = 5.0
        await views.submit_rejection(slack.ack, {"user": {"id": BOB}}, reason_form("No"), context)
        assert slack.acks == [{"response_action": "errors", "errors": {"reason": views.TOO_SLOW}}]
        assert service.called() == ["check_can_reject"]

    async def test_a_check_that_fails_asks_to_submit_again(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        service.outcome["check_can_reject"] = ConnectionError()
        await views.submit_rejection(slack.ack, {"user": {"id": BOB}}, reason_form("No"), context)
        assert slack.acks == [{"response_action": "errors", "errors": {"reason": views.TRY_AGAIN}}]

    async def test_a_failure_after_the_ack_is_logged_and_goes_no_further(
        self,
        slack: Calls,
        service: Service,
        context: AsyncBoltContext,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        service.outcome["reject"] = RuntimeError("reason: Squatted")
        with caplog.at_level(logging.ERROR):
            await views.submit_rejection(
                slack.ack, {"user": {"id": BOB}}, reason_form("Squatted"), context
            )
        assert slack.acks == [{}]
        assert caplog.messages == ["rejection_failed id=7 kind=RuntimeError"]

    @pytest.mark.parametrize(
        ("code", "metadata", "problem"),
        [
            ("Q09ERQ==", "x", "This form is not for a request."),
            ("", "7", "Paste the code."),
            ("<b>", "7", "That is not an invitation code"),
        ],
    )
    async def test_a_pasted_code_that_is_not_one_is_refused_in_the_form(
        self,
        code: str,
        metadata: str,
        problem: str,
        slack: Calls,
        service: Service,
        context: AsyncBoltContext,
    ) -> None:
        view = form(View.PASTE, metadata, {Block.CODE.value: {"value": code}})
        await views.submit_code(slack.ack, {"user": {"id": BOB}}, view, context)
        assert problem in slack.acks[0]["errors"][Block.CODE.value]
        assert service.calls == []

    async def test_a_pasted_code_loses_its_line_breaks_and_is_sent_on(
        self, slack: Calls, service: Service, context: AsyncBoltContext
    ) -> None:
        view = form(View.PASTE, "7", {Block.CODE.value: {"value": "Q09E\nRQ=="}})
        await views.submit_code(slack.ack, {"user": {"id": BOB}}, view, context)
        assert slack.acks == [{}]
        assert service.calls[-1] == ("paste_code", (7, BOB, "Q09ERQ=="), {})


async def test_bot_parts_reach_every_listener_through_the_context(service: Service) -> None:
    request = AsyncBoltRequest(body={}, mode="socket_mode")
    continued: list[bool] = []

    async def next_middleware() -> BoltResponse:
        continued.append(True)
        return BoltResponse(status=200)

    services = SimpleNamespace(
        requests=service, codes=Service(), listings=Service(), sites=service.sites, health=None
    )
    parts = BotParts(services)  # type: ignore[arg-type]
    await parts.async_process(req=request, resp=BoltResponse(status=200), next=next_middleware)
    assert continued == [True]
    assert service_in(request.context) is service  # type: ignore[comparison-overlap]
    assert codes_in(request.context) is services.codes
    assert listings_in(request.context) is services.listings
