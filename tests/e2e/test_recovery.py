"""Nothing is lost when Exalate or Slack misbehave along the way."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.approvals.model import RequestFields
from bot.service.outbox import HOLD
from handlers.ids import Action
from storage import RequestRepository, make_sessionmaker
from tests.e2e.conftest import Clock
from tests.e2e.harness import ALICE, APPROVAL_CHANNEL, BOB, CAROL, MALLORY, Harness


async def _card_id(harness: Harness) -> int:
    """The request id on the first approval card."""
    post = await harness.slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == APPROVAL_CHANNEL
    )
    return int(post.args["blocks"][0]["text"]["text"].rsplit("#", 1)[1])


class TestLostAnswer:
    @pytest.mark.parametrize("create_timeout", [0.1])
    async def test_retry_after_a_timeout_adopts_the_connection(self, harness: Harness) -> None:
        """The timed-out create did happen; Retry finds it and never creates a second one."""
        harness.simulator.create_latency = 1.0
        await harness.submit_request()
        request_id = await _card_id(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("failed")
        assert len(harness.simulator.connections) == 1  # created, though the answer was lost
        harness.simulator.create_latency = 0
        await harness.click(Action.RETRY, request_id, CAROL)
        card = await harness.card("invited")
        assert len(harness.simulator.create_calls) == 1
        assert "copy the code from the Exalate console" in json.dumps(card.args["blocks"])
        assert card.args["blocks"][-1]["elements"][0]["action_id"] == Action.PASTE_CODE.value
        await harness.dm(ALICE, "did not reach me")
        status = await harness.command("status")
        assert "awaiting the partner" in json.dumps(status.body)


class TestUndeliveredCode:
    async def test_refused_dm_keeps_the_code_for_resend(self, harness: Harness) -> None:
        """A DM Slack refuses leaves the code stored; Resend delivers it to the requester."""
        await harness.submit_request()
        request_id = await _card_id(harness)
        await harness.dm(ALICE, "waiting for approval")
        harness.slack.fail("chat.postMessage", "messages_tab_disabled")
        await harness.click(Action.APPROVE, request_id, BOB)
        card = await harness.slack.wait_for(
            "chat.update", lambda c: "messages_tab_disabled" in json.dumps(c.args["blocks"])
        )
        assert card.args["blocks"][-1]["elements"][0]["action_id"] == Action.RESEND.value
        code = str(next(iter(harness.simulator.connections.values()))["invitationCode"])
        assert code not in json.dumps(card.args)

        refused = await harness.click(Action.RESEND, request_id, MALLORY)
        assert (
            "Only the requester or an approver"
            in (await harness.private_reply(refused)).args["text"]
        )
        name = await harness.click(Action.RESEND, request_id, ALICE)
        await harness.dm(ALICE, code)
        assert "Sending the invitation code" in (await harness.private_reply(name)).args["text"]
        fixed = await harness.slack.wait_for(
            "chat.update", lambda c: "was sent privately" in json.dumps(c.args["blocks"])
        )
        assert all(block["type"] != "actions" for block in fixed.args["blocks"])


class TestUnpostedCard:
    async def test_card_follows_once_the_channel_works(self, harness: Harness) -> None:
        """not_in_channel keeps the request; the requester is told; the card comes later."""
        harness.slack.fail("chat.postMessage", "not_in_channel")
        assert (await harness.submit_request()).body == {}
        await harness.dm(ALICE, "could not post it")
        assert (await harness.submit_request(remote_short_name="other", user=CAROL)).body == {}
        await harness.settle()
        cards = [
            c
            for c in harness.slack.calls_to("chat.postMessage")
            if c.args.get("channel") == APPROVAL_CHANNEL
        ]
        assert len(cards) == 3  # the refused one, then both cards
        headers = [c.args["blocks"][0]["text"]["text"] for c in cards[1:]]
        assert sorted(headers) == ["Exalate connection request #1", "Exalate connection request #2"]
        await harness.click(Action.APPROVE, 1, BOB)
        await harness.card("invited")

    async def test_a_card_held_by_a_process_that_died_mid_post_follows(
        self, harness: Harness, clock: Clock
    ) -> None:
        """A request stored and its card's message taken by a replica that died before
        posting it: another replica posts it, once, when the dead one's hold runs out."""
        repository = RequestRepository(make_sessionmaker(harness.runtime.engine))
        fields = RequestFields("acme", "partner", "acme_to_partner", "", "SUP")
        request = await repository.add(fields, ALICE, clock.now)
        (item,) = await repository.outbox.take_due(clock.now, "dead-replica", clock.now + HOLD)
        assert item.request_id == request.id
        await harness.settle()
        assert harness.slack.calls_to("chat.postMessage") == []
        clock.advance(HOLD + timedelta(seconds=1))
        await harness.settle()
        assert await _card_id(harness) == request.id
        assert (
            len(
                [
                    c
                    for c in harness.slack.calls_to("chat.postMessage")
                    if c.args["channel"] == APPROVAL_CHANNEL
                ]
            )
            == 1
        )


class TestExpiredTrigger:
    async def test_modal_that_cannot_open_is_explained(self, harness: Harness) -> None:
        """expired_trigger_id tells the person to run the command again."""
        harness.slack.fail("views.open", "expired_trigger_id")
        command = await harness.command("connect")
        reply = await harness.private_reply(command.response_url)
        assert "run the command again" in reply.args["text"]


class TestAssistedMode:
    @pytest.mark.parametrize("initiation", ["assisted"])
    async def test_assisted_mode_never_calls_the_create_api(self, harness: Harness) -> None:
        """EXALATE_INITIATION=assisted: no POST to Exalate; the approver is guided instead."""
        await harness.submit_request()
        request_id = await _card_id(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("assisted")
        await harness.dm(BOB, "Copy Invitation Code")
        assert harness.simulator.create_calls == []
        harness.simulator.connections[800] = {  # Bob creates it in the console
            "id": 800,
            "name": "acme_to_partner",
            "status": "PENDING",
            "invitationCode": "CODE",
        }
        await harness.tick()
        await harness.tick()
        notes = [
            c.args["text"]
            for c in harness.slack.calls_to("chat.postMessage")
            if "thread_ts" in c.args
        ]
        assert sum("now exists in Exalate" in note for note in notes) == 1
        pasted = await harness.paste(request_id, "CODE", CAROL)
        assert pasted.body == {}  # Carol is an approver too: any approver may paste
        await harness.dm(ALICE, "CODE")

    @pytest.mark.parametrize("initiation", ["assisted"])
    async def test_accepted_before_paste_settles_as_active(self, harness: Harness) -> None:
        """The partner accepted a code passed on by hand: the request still ends active."""
        await harness.submit_request()
        request_id = await _card_id(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("assisted")
        harness.simulator.create_in_console("acme_to_partner", status="ACTIVE", code="C")
        await harness.tick()
        await harness.card("active")

    @pytest.mark.parametrize("initiation", ["assisted"])
    async def test_assisted_request_nobody_creates_expires(
        self, harness: Harness, clock: Clock
    ) -> None:
        """If nobody creates it in the console within the approval TTL, it expires and
        frees its name."""
        await harness.submit_request()
        request_id = await _card_id(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("assisted")
        clock.advance(timedelta(days=8))
        await harness.tick()
        await harness.card("expired")
        assert (await harness.submit_request()).body == {}  # the name is free again
