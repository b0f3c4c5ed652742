"""One person can neither flood the approvers nor squat names."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot.approvals.model import Status
from handlers.ids import Action
from tests.e2e.conftest import Clock
from tests.e2e.harness import APPROVAL_CHANNEL, BOB, CAROL, Harness


def _cards(harness: Harness) -> int:
    return len(
        [
            c
            for c in harness.slack.calls_to("chat.postMessage")
            if c.args.get("channel") == APPROVAL_CHANNEL and "thread_ts" not in c.args
        ]
    )


@pytest.mark.parametrize("limits", [(3, 10)])  # the defaults
class TestOpenRequests:
    async def test_a_burst_from_one_person_gets_three_cards(self, harness: Harness) -> None:
        """Thirty submissions at once from one person: three stored, three cards, and
        each of the others told why, in the form."""
        replies = await asyncio.gather(
            *(harness.submit_request(remote_short_name=f"p{n}") for n in range(30))
        )
        accepted = [reply for reply in replies if reply.body == {}]
        refused = [reply for reply in replies if reply.body != {}]
        assert len(accepted) == 3
        assert all("requests waiting for a decision" in json.dumps(r.body) for r in refused)
        await harness.settle()
        assert _cards(harness) == 3

    async def test_the_refusal_says_when_it_frees_up(self, harness: Harness) -> None:
        for n in range(3):
            assert (await harness.submit_request(remote_short_name=f"p{n}")).body == {}
        refused = await harness.submit_request(remote_short_name="more")
        message = refused.body["errors"]["connection_name"]
        assert "acme_to_p0, acme_to_p1, acme_to_p2" in message
        assert "2026-12-03 09:00 UTC" in message  # the oldest expires after the 7-day TTL
        cancelled = await harness.command("cancel acme_to_p1")
        assert "Cancelled" in (await harness.private_reply(cancelled.response_url)).args["text"]
        assert (await harness.submit_request(remote_short_name="more")).body == {}

    async def test_others_are_not_held_back(self, harness: Harness) -> None:
        """The limit is per person: Carol submits while Alice is at hers."""
        for n in range(3):
            assert (await harness.submit_request(remote_short_name=f"p{n}")).body == {}
        assert (await harness.submit_request(remote_short_name="c", user=CAROL)).body == {}


@pytest.mark.parametrize("limits", [(1000, 10)])
class TestSubmissionRate:
    async def test_ten_an_hour_then_a_time_to_come_back(
        self, harness: Harness, clock: Clock
    ) -> None:
        for n in range(10):
            assert (await harness.submit_request(remote_short_name=f"p{n}")).body == {}
            clock.advance(timedelta(minutes=1))
        refused = await harness.submit_request(remote_short_name="more")
        message = refused.body["errors"]["connection_name"]
        assert "10 requests in the last hour" in message
        assert "submit again at 10:00 UTC" in message  # the first one's hour ends then
        clock.advance(timedelta(minutes=51))
        assert (await harness.submit_request(remote_short_name="more")).body == {}


class TestRejectEverything:
    async def test_one_reason_rejects_every_open_request_of_the_requester(
        self, harness: Harness
    ) -> None:
        """From one card, with one reason: all of Alice's waiting requests are rejected
        and their names freed; Carol's request is left alone."""
        for n in range(5):
            assert (await harness.submit_request(remote_short_name=f"p{n}")).body == {}
        assert (await harness.submit_request(remote_short_name="c", user=CAROL)).body == {}
        await harness.settle()
        first = await harness.request_id()
        await harness.click(Action.REJECT, first, BOB)
        await harness.slack.wait_for("views.open")
        reply = await harness.submit_reason(first, "Squatting names", everything=True)
        assert reply.body == {}
        await harness.settle()
        statuses = [(await harness.repository_request(n)).status for n in range(1, 7)]
        assert statuses == [Status.REJECTED] * 5 + [Status.PENDING_APPROVAL]
        assert (await harness.submit_request(remote_short_name="p0", user=CAROL)).body == {}
