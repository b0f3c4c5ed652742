"""Faults and stale clicks: nothing lost, nothing duplicated, nothing leaked."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot.approvals.model import Status
from bot.approvers import GROUP_CACHE_SECONDS
from handlers.ids import Action, Block, View
from storage import RequestRepository, make_sessionmaker
from tests.e2e.conftest import Clock
from tests.e2e.harness import ALICE, APPROVAL_CHANNEL, BOB, CAROL, MALLORY, Harness


def _repository(harness: Harness) -> RequestRepository:
    return RequestRepository(make_sessionmaker(harness.runtime.engine))


async def _stuck_in_initiating(harness: Harness, clock: Clock, *, checked_name: bool = True) -> int:
    """A request whose bot stopped after committing `initiating`, before Exalate answered:
    by default after it saw the name free and called create, else before it looked."""
    assert (await harness.submit_request()).body == {}
    request_id = await harness.request_id()
    repository = _repository(harness)
    request = await repository.get(request_id)
    assert request is not None
    moved = await repository.transition(
        request, Status.INITIATING, actor=BOB, at=clock.now, decided_by=BOB
    )
    assert moved is not None
    if checked_name:
        await repository.annotate(request_id, name_absent_at=clock.now)
    clock.advance(timedelta(minutes=5))
    return request_id


class TestInterruptedInitiation:
    async def test_created_connection_is_adopted_and_code_can_be_pasted(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Exalate has it: the card says so and an approver pastes the code for the requester."""
        request_id = await _stuck_in_initiating(harness, clock)
        harness.simulator.create_in_console("acme_to_partner", code="SECRET-X1")
        await harness.runtime.jobs.tick()
        card = await harness.card("invited")
        assert card.args["blocks"][-1]["elements"][0]["action_id"] == Action.PASTE_CODE.value
        await harness.dm(ALICE, "did not reach me")

        refused = await harness.click(Action.PASTE_CODE, request_id, MALLORY)
        assert "Only approvers" in (await harness.private_reply(refused)).args["text"]
        await harness.click(Action.PASTE_CODE, request_id, CAROL)
        modal = await harness.slack.wait_for("views.open")
        assert modal.args["view"]["private_metadata"] == str(request_id)

        for hostile in (
            "```\n<!channel>",
            "code;with|bars",
            "\uff46\uff55\uff4c\uff4c",
            "a" * 3000,
        ):
            refused_code = await harness.paste(request_id, hostile, CAROL)
            assert "not an invitation code" in refused_code.body["errors"][Block.CODE.value]
        empty = await harness.paste(request_id, "  ", CAROL)
        assert empty.body["errors"] == {Block.CODE.value: "Paste the code."}
        assert (await harness.paste(request_id, "SECRET-\nX1", CAROL)).body == {}
        delivered = await harness.dm(ALICE, "SECRET-X1")
        assert "Accept invitation" in json.dumps(delivered.args["blocks"])
        fixed = await harness.slack.wait_for(
            "chat.update", lambda c: "was sent privately" in json.dumps(c.args["blocks"])
        )
        assert all(block["type"] != "actions" for block in fixed.args["blocks"])
        history = await harness.command("status acme_to_partner")
        assert "code pasted by <@U0CAROL>" in json.dumps(history.body)
        assert harness.simulator.create_calls == []

    async def test_a_name_not_seen_free_before_the_crash_is_not_adopted(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Stopped before it looked at Exalate's list: a connection of that name now is
        someone else's. The request fails saying so, and nothing is adopted."""
        request_id = await _stuck_in_initiating(harness, clock, checked_name=False)
        harness.simulator.create_in_console("acme_to_partner", code="SECRET-X1")
        await harness.runtime.jobs.tick()
        card = await harness.card("failed")
        assert "that this request did not create" in json.dumps(card.args["blocks"])
        request = await harness.repository_request(request_id)
        assert (request.status, request.exalate_connection_id) == (Status.FAILED, None)

    async def test_missing_connection_fails_with_retry(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Exalate does not have it: the request fails, and Retry creates it once."""
        request_id = await _stuck_in_initiating(harness, clock)
        await harness.runtime.jobs.tick()
        card = await harness.card("failed")
        assert "nothing was created" in json.dumps(card.args["blocks"])
        await harness.click(Action.RETRY, request_id, BOB)
        await harness.card("invited")
        assert len(harness.simulator.create_calls) == 1

    async def test_recent_initiation_is_left_alone(self, harness: Harness, clock: Clock) -> None:
        """An initiation younger than a create call may still be running elsewhere."""
        request_id = await _stuck_in_initiating(harness, clock)
        clock.now -= timedelta(minutes=5)
        await harness.runtime.jobs.tick()
        request = await _repository(harness).get(request_id)
        assert request is not None
        assert request.status is Status.INITIATING


class TestStaleCards:
    async def test_old_retry_button_is_refused(self, harness: Harness) -> None:
        """A Retry drawn before a later failure names an old version: it changes nothing."""
        harness.simulator.fail("create", 500, times=2)
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        await harness.click(Action.APPROVE, request_id, BOB)
        first = await harness.card("failed")
        stale = first.args["blocks"][-1]["elements"][0]["value"]
        await harness.click(Action.RETRY, stale, CAROL)
        await harness.settle()
        assert len(harness.simulator.create_calls) == 2  # failed again: a newer card
        name = await harness.click(Action.RETRY, stale, CAROL)
        assert "Nothing changed" in (await harness.private_reply(name)).args["text"]
        assert len(harness.simulator.create_calls) == 2

    async def test_forged_values_are_refused(self, harness: Harness) -> None:
        """Values the bot never wrote are refused: no fingerprint, a bad one, or junk."""
        assert (await harness.submit_request()).body == {}
        for value in ("1", "1:not-a-fingerprint", "<!channel>", "1" * 40, "", "²:0"):
            name = await harness.click(Action.APPROVE, value, BOB)
            assert "does not belong" in (await harness.private_reply(name)).args["text"]
        assert harness.simulator.create_calls == []


class TestSlackFaults:
    async def test_rate_limited_card_post_is_ridden_out(self, harness: Harness) -> None:
        """A 429 with Retry-After on chat.postMessage is waited out; the card arrives."""
        harness.slack.rate_limit("chat.postMessage", retry_after=0)
        assert (await harness.submit_request()).body == {}
        await harness.settle()
        cards = [
            c
            for c in harness.slack.calls_to("chat.postMessage")
            if c.args.get("channel") == APPROVAL_CHANNEL
        ]
        assert len(cards) == 2  # the 429, then the retry that landed
        card = await harness.repository_request(1)
        assert card.card_ref is not None

    async def test_deactivated_requester_keeps_the_code_retrievable(self, harness: Harness) -> None:
        """user_disabled on the code's DM: the card says so; Show code works later."""
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        await harness.dm(ALICE, "waiting for approval")
        harness.slack.fail("chat.postMessage", "user_disabled")
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.slack.wait_for(
            "chat.update", lambda c: "user_disabled" in json.dumps(c.args["blocks"])
        )
        await harness.click(Action.SHOW_CODE, request_id, ALICE)
        shown = await harness.slack.wait_for(
            "views.open", lambda c: c.args["view"]["callback_id"] == View.CODE.value
        )
        code = next(iter(harness.simulator.connections.values()))["invitationCode"]
        assert code in json.dumps(shown.args["view"])


class TestSlowSlackBeforeTheAck:
    """Approver checks that wait on Slack's user groups are bounded by Slack's 3 s."""

    async def test_reject_reason_is_answered_in_time_and_changes_nothing(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Group cache expired, usergroups.users.list answering 429 Retry-After: 4: the
        reason form is answered within 3 s (the harness fails a later answer) with a
        field error asking to submit again, and the request still awaits approval."""
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        await harness.click(Action.REJECT, request_id, CAROL)  # an approver by group
        await harness.slack.wait_for("views.open")
        clock.advance(timedelta(seconds=GROUP_CACHE_SECONDS + 1))
        harness.slack.rate_limit("usergroups.users.list", retry_after=4)

        reply = await harness.submit_reason(request_id, "Not this partner", user=CAROL)

        assert reply.body["response_action"] == "errors"
        assert "Submit again" in reply.body["errors"][Block.REASON.value]
        await harness.settle()
        assert (await harness.repository_request(request_id)).status is Status.PENDING_APPROVAL
        assert not [
            c for c in harness.slack.calls_to("chat.update") if "rejected" in c.args["text"]
        ]

    async def test_submitting_again_finds_the_answer_ready(
        self, harness: Harness, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The lookup the first submission could not wait for goes on; once Slack has
        answered it, the reason submitted again is taken at once."""
        monkeypatch.setattr("handlers.views.SLACK_BUDGET_SECONDS", 0.3)
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        await harness.click(Action.REJECT, request_id, CAROL)
        await harness.slack.wait_for("views.open")
        clock.advance(timedelta(seconds=GROUP_CACHE_SECONDS + 1))
        harness.slack.rate_limit("usergroups.users.list", retry_after=1)
        first = await harness.submit_reason(request_id, "Not this partner", user=CAROL)
        assert "Submit again" in first.body["errors"][Block.REASON.value]
        lookups = len(harness.slack.calls_to("usergroups.users.list"))
        await harness.slack.wait_for(  # the retry after Retry-After, answered normally
            "usergroups.users.list",
            lambda _: len(harness.slack.calls_to("usergroups.users.list")) > lookups,
        )
        await asyncio.gather(*harness.runtime.service.policy.pending_lookups())

        assert (await harness.submit_reason(request_id, "Not this partner", user=CAROL)).body == {}
        await harness.card("rejected")
        assert len(harness.slack.calls_to("usergroups.users.list")) == lookups + 1

    async def test_paste_code_is_answered_in_time_and_changes_nothing(
        self, harness: Harness, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The same fault on the Paste invitation code form: the code is not taken."""
        monkeypatch.setattr("handlers.views.SLACK_BUDGET_SECONDS", 0.3)
        request_id = await _stuck_in_initiating(harness, clock)
        harness.simulator.create_in_console("acme_to_partner", code="console-code-123")
        await harness.runtime.jobs.tick()
        before = await harness.repository_request(request_id)
        clock.advance(timedelta(seconds=GROUP_CACHE_SECONDS + 1))
        harness.slack.rate_limit("usergroups.users.list", retry_after=4)

        reply = await harness.paste(request_id, "console-code-123", CAROL)

        assert reply.body["response_action"] == "errors"
        assert "Submit again" in reply.body["errors"][Block.CODE.value]
        await harness.settle()
        assert (await harness.repository_request(request_id)).version == before.version
        assert not [c for c in harness.slack.calls if "console-code-123" in json.dumps(c.args)]

    async def test_reject_click_explains_instead_of_opening_a_dead_modal(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The Reject button needs the same check before its modal, whose trigger_id lives
        3 s: past the budget the approver is told to click again, and no modal is tried."""
        monkeypatch.setattr("handlers.actions.SLACK_BUDGET_SECONDS", 0.3)
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        harness.slack.rate_limit("usergroups.users.list", retry_after=4)

        name = await harness.click(Action.REJECT, request_id, CAROL)

        assert "Click again" in (await harness.private_reply(name)).args["text"]
        assert not harness.slack.calls_to("views.open")


class TestInput:
    async def test_hostile_description_stays_text(self, harness: Harness) -> None:
        """Mentions, broadcasts, links, RTL marks, emoji and NUL never escape or crash."""
        nasty = "<!channel> <@U0BOB> <https://evil.test|click> \u202e\u200f 🚀 & done"
        assert (await harness.submit_request(description=nasty)).body == {}
        card = json.dumps(
            (await harness.slack.wait_for("chat.postMessage")).args["blocks"], ensure_ascii=False
        )
        for raw in ("<!channel>", "<@U0BOB>", "<https://evil.test"):
            assert raw not in card
        assert "🚀" in card
        with_nul = await harness.submit_request(remote_short_name="x", description="a\x00b")
        assert "NUL" in with_nul.body["errors"]["description"]

    async def test_any_command_text_gets_an_answer(self, harness: Harness) -> None:
        """Odd command text is answered with usage or an explanation, never an error."""
        for text in ("\x00", 'connect "', "status \u202e", "cancel", "💥" * 500, "connect a=b=c"):
            reply = await harness.command(text)
            assert reply.status == 200, text
