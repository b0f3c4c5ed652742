"""Slack as it really fails (issue 27): an archived approvals channel, a revoked token,
rate limits, and the same signed submission sent twice. Nothing is lost, nobody is told
the wrong reason, and ``/readyz`` tells the Slack truth."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from bot.approvals.model import Status
from bot.sandbox.slack_emulator import Call
from handlers.blocks import request_modal
from handlers.ids import Action, View
from tests.e2e.conftest import Clock
from tests.e2e.harness import (
    ALICE,
    APPROVAL_CHANNEL,
    BOB,
    CAROL,
    MALLORY,
    Harness,
    Reply,
)

DM_ALICE = "D" + ALICE


async def _readyz(harness: Harness) -> tuple[int, dict[str, Any]]:
    """``GET /readyz`` of the running bot: its status and its JSON."""
    url = harness.url.rsplit("/slack/events", 1)[0] + "/readyz"
    async with harness.http.get(url) as response:
        return response.status, await response.json()


def _card_posts(harness: Harness) -> list[Call]:
    """Every attempt to post a card (not a thread note) in the approvals channel."""
    return [
        c
        for c in harness.slack.calls_to("chat.postMessage")
        if c.args.get("channel") == APPROVAL_CHANNEL and "thread_ts" not in c.args
    ]


def _posts_to(harness: Harness, channel: str) -> list[Call]:
    return [
        c for c in harness.slack.calls_to("chat.postMessage") if c.args.get("channel") == channel
    ]


def _in_slack(harness: Harness, channel: str, fragment: str) -> list[dict[str, Any]]:
    """The messages Slack holds now in ``channel`` that contain ``fragment``."""
    return [
        message
        for (where, _ts), message in harness.slack.messages.items()
        if where == channel and fragment in json.dumps(message)
    ]


def _code(harness: Harness, name: str = "acme_to_partner") -> str:
    return str(harness.simulator.named(name)["invitationCode"])


async def _card_now(harness: Harness, request_id: int) -> dict[str, Any]:
    """The request's card as Slack shows it now (its latest update applied)."""
    card_ref = (await harness.repository_request(request_id)).card_ref
    assert card_ref is not None
    channel, ts = card_ref.split(":", 1)
    return harness.slack.messages[(channel, ts)]


@dataclass
class _Timeline:
    """When, by the bot's clock, each Slack call was made. The clock moves only between
    settles, and a settle leaves nothing due, so every call seen after a settle was made
    at the clock's time of that settle."""

    harness: Harness
    clock: Clock
    calls: list[tuple[float, Call]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._start = self.clock.now
        self._seen = len(self.harness.slack.calls)

    def note(self) -> None:
        now = (self.clock.now - self._start).total_seconds()
        self.calls += [(now, call) for call in self.harness.slack.calls[self._seen :]]
        self._seen = len(self.harness.slack.calls)

    async def step(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        await self.harness.settle()
        self.note()

    async def until_sent(self, seconds: float, *, at_most: int) -> None:
        """Step until the outbox is empty (at most ``at_most`` steps)."""
        for _ in range(at_most):
            if not await self.harness.runtime.repository.outbox.waiting():
                return
            await self.step(seconds)
        raise AssertionError(
            f"outbox not empty: {await self.harness.runtime.repository.outbox.waiting()}"
        )

    def times(self, method: str, where: Callable[[Call], bool] = lambda _c: True) -> list[float]:
        return [at for at, call in self.calls if call.method == method and where(call)]


def _gaps(times: list[float]) -> list[float]:
    return [round(later - earlier, 6) for earlier, later in itertools.pairwise(times)]


class TestArchivedApprovalsChannel:
    async def test_requester_told_archived_few_posts_readyz_then_card_on_unarchive(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Archived before a submission: the request is stored, the requester hears
        "archived" once, a minute of ticks reaches the channel at most 3 times, /readyz
        is 503 naming it; unarchived, the card follows and /readyz is 200 again."""
        await harness.tick()
        assert (await _readyz(harness))[0] == 200
        harness.slack.archive(APPROVAL_CHANNEL)

        reply = await harness.submit_request()
        assert reply == Reply(200, {})
        await harness.settle()
        assert (await harness.runtime.repository.count_by_status()) == {"pending_approval": 1}
        told = await harness.dm(ALICE, "archived")
        assert "not a member" not in json.dumps(told.args)

        for _ in range(12):  # a minute, a tick every 5 s
            clock.advance(timedelta(seconds=5))
            await harness.tick()
            await harness.settle()
        assert 1 <= len(_card_posts(harness)) <= 3
        assert not _in_slack(harness, APPROVAL_CHANNEL, "")  # nothing got in
        dms = [json.dumps(c.args) for c in _posts_to(harness, DM_ALICE)]
        assert sum("archived" in dm for dm in dms) == 1  # told once, not on every retry
        assert not any("not a member" in dm for dm in dms)

        status, ready = await _readyz(harness)
        assert status == 503
        assert ready["ready"] is False
        assert ready["slack"]["channels_refused"] == {APPROVAL_CHANNEL: "is_archived"}
        assert ready["slack"]["token_refused"] is None
        assert ready["slack"]["parked"] == {"is_archived": 1}

        harness.slack.unarchive(APPROVAL_CHANNEL)
        posts_before = len(_card_posts(harness))
        await harness.tick()  # the probe sees the channel back
        await harness.settle()
        request_id = await harness.request_id()  # the card, nobody resubmitted
        assert request_id == 1
        assert len(_card_posts(harness)) == posts_before + 1
        assert len(_in_slack(harness, APPROVAL_CHANNEL, "Exalate connection request #1")) == 1
        await harness.dm(ALICE, "waiting for approval")
        status, ready = await _readyz(harness)
        assert status == 200, ready["slack"]
        assert ready["slack"]["channels_refused"] == {}
        assert ready["slack"]["parked"] == {}
        assert await harness.runtime.repository.outbox.waiting() == 0


class TestTokenRevoked:
    async def test_readyz_names_the_token_and_approve_creates_nothing(
        self, harness: Harness
    ) -> None:
        """Revoked after the card is up: a tick makes /readyz 503 naming token_revoked;
        an Approve is refused privately and Exalate is not asked to create anything."""
        await harness.submit_request()
        await harness.settle()
        request_id = await harness.request_id()
        await harness.tick()
        assert (await _readyz(harness))[0] == 200

        harness.slack.revoke_token("token_revoked")
        await harness.tick()
        status, ready = await _readyz(harness)
        assert status == 503
        assert ready["slack"]["token_refused"] == "token_revoked"

        name = await harness.click(Action.APPROVE, request_id, BOB)
        answer = await harness.private_reply(name)
        await harness.settle()
        assert "Slack refuses the bot's token" in answer.args["text"]
        assert harness.simulator.create_calls == []
        assert harness.simulator.connections == {}
        assert (await harness.repository_request(request_id)).status.value == "pending_approval"

    async def test_parked_code_and_card_go_out_once_the_token_works(self, harness: Harness) -> None:
        """Approved while the token worked, revoked while Exalate created the connection:
        the code's DM and the card update park; with the token back, a tick releases
        them and the requester has her code, without anyone clicking."""
        await harness.submit_request()
        await harness.settle()
        request_id = await harness.request_id()
        await harness.dm(ALICE, "waiting for approval")

        harness.simulator.hold_creates()
        await harness.click(Action.APPROVE, request_id, BOB)
        await asyncio.wait_for(harness.simulator.holds(1), 5)
        harness.slack.revoke_token("token_revoked")
        harness.simulator.release_creates()
        await harness.settle()

        code = _code(harness)
        assert not _in_slack(harness, DM_ALICE, code)
        assert (await harness.repository_request(request_id)).status.value == "invited"
        status, ready = await _readyz(harness)
        assert status == 503
        assert ready["slack"]["token_refused"] == "token_revoked"
        assert ready["slack"]["parked"] == {"token_revoked": 2}  # the code's DM, the card

        harness.slack.restore_token()
        await harness.tick()  # the probe sees the token work again
        await harness.settle()

        assert len(_in_slack(harness, DM_ALICE, code)) == 1
        card = await _card_now(harness, request_id)
        assert card["text"].endswith(": invited"), card["text"]
        assert "sent privately" in json.dumps(card["blocks"])
        assert len(harness.simulator.create_calls) == 1
        status, ready = await _readyz(harness)
        assert status == 200, ready["slack"]
        assert ready["slack"]["parked"] == {}
        assert await harness.runtime.repository.outbox.waiting() == 0


RETRY_AFTER = 3
STEP = 0.25  # seconds of the bot's clock between two looks


class TestRateLimits:
    async def test_four_429s_on_chat_update(self, harness: Harness, clock: Clock) -> None:
        """chat.update answers 429 four times: the card is redrawn in the end, each try
        waits out Retry-After (and at most a quarter more), and the code's DM is sent."""
        await harness.submit_request()
        await harness.settle()
        request_id = await harness.request_id()
        await harness.dm(ALICE, "waiting for approval")

        timeline = _Timeline(harness, clock)
        harness.slack.rate_limit("chat.update", retry_after=RETRY_AFTER, times=4)
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.settle()
        timeline.note()
        await timeline.until_sent(STEP, at_most=200)

        card = await harness.repository_request(request_id)
        assert card.card_ref is not None
        channel, ts = card.card_ref.split(":", 1)
        updates = [c for at, c in timeline.calls if c.method == "chat.update"]
        assert all((c.args["channel"], c.args["ts"]) == (channel, ts) for c in updates)
        assert len(updates) == 5  # four refused, then the one that drew the card
        times = timeline.times("chat.update")
        for gap in _gaps(times):
            assert RETRY_AFTER <= gap <= RETRY_AFTER * 1.25 + STEP, times
        assert updates[-1].args["text"].endswith(": invited")
        shown = await _card_now(harness, request_id)
        assert shown["text"].endswith(": invited")
        assert "sent privately" in json.dumps(shown["blocks"])
        assert len(_in_slack(harness, DM_ALICE, _code(harness))) == 1

    async def test_four_429s_on_chat_post_message(self, harness: Harness, clock: Clock) -> None:
        """chat.postMessage answers 429 four times, first for a card, then for a thread
        note and a DM together: each ends up in Slack once, none sooner than Retry-After
        after the 429 before it."""
        timeline = _Timeline(harness, clock)
        harness.slack.rate_limit("chat.postMessage", retry_after=RETRY_AFTER, times=4)
        assert (await harness.submit_request()).body == {}
        await harness.settle()
        timeline.note()
        await timeline.until_sent(STEP, at_most=200)

        posts = timeline.times("chat.postMessage", lambda c: c.args["channel"] == APPROVAL_CHANNEL)
        assert len(posts) == 5, posts
        for gap in _gaps(posts):
            assert RETRY_AFTER <= gap <= RETRY_AFTER * 1.25 + STEP, posts
        assert len(_in_slack(harness, APPROVAL_CHANNEL, "Exalate connection request #1")) == 1
        assert len(_in_slack(harness, DM_ALICE, "waiting for approval")) == 1
        dms = timeline.times("chat.postMessage", lambda c: c.args["channel"] == DM_ALICE)
        assert dms == [posts[-1]]  # told once the card is up, not before

        await harness.click(Action.APPROVE, 1, BOB)
        await harness.settle()
        code = _code(harness)
        assert len(_in_slack(harness, DM_ALICE, code)) == 1

        timeline = _Timeline(harness, clock)
        harness.slack.rate_limit("chat.postMessage", retry_after=RETRY_AFTER, times=4)
        harness.simulator.accept("acme_to_partner")
        await harness.tick()
        await harness.settle()
        timeline.note()
        await timeline.until_sent(STEP, at_most=200)

        notes = timeline.times("chat.postMessage", lambda c: "thread_ts" in c.args)
        told = timeline.times("chat.postMessage", lambda c: c.args["channel"] == DM_ALICE)
        assert len(notes) + len(told) == 6, (notes, told)  # four refused, two taken
        for each in (notes, told):
            assert each
            for gap in _gaps(each):
                assert RETRY_AFTER <= gap <= RETRY_AFTER * 1.25 + STEP, (notes, told)
        thread = [
            m
            for (where, _ts), m in harness.slack.messages.items()
            if where == APPROVAL_CHANNEL and "thread_ts" in m
        ]
        assert len(thread) == 1
        assert "The partner accepted" in thread[0]["text"]
        assert len(_in_slack(harness, DM_ALICE, "Your partner accepted")) == 1
        shown = await _card_now(harness, 1)
        assert shown["text"].endswith(": active")
        assert not _in_slack(harness, DM_ALICE, code)  # its DM edited once it was spent

    async def test_a_429_on_users_info_before_a_code_is_waited_out_not_slept_on(
        self, harness: Harness, clock: Clock
    ) -> None:
        """The look at the requester before her code goes (users.info) answers 429: the
        outbox asks again no sooner than Retry-After, by its clock (sleeping on it instead
        would hold up every other message), and the code arrives."""
        await harness.submit_request()
        await harness.settle()
        request_id = await harness.request_id()
        harness.simulator.hold_creates()
        await harness.click(Action.APPROVE, request_id, BOB)
        await asyncio.wait_for(harness.simulator.holds(1), 5)  # the approval's own looks done

        timeline = _Timeline(harness, clock)
        harness.slack.rate_limit("users.info", retry_after=1, times=1)
        harness.simulator.release_creates()
        await harness.settle()
        timeline.note()
        await timeline.until_sent(STEP, at_most=100)

        lookups = timeline.times("users.info")
        assert lookups
        for gap in _gaps(lookups):
            assert gap >= 1, lookups
        assert len(_in_slack(harness, DM_ALICE, _code(harness))) == 1


BURST = 100
REQUESTERS = (ALICE, CAROL, MALLORY)


class TestBurst:
    async def test_a_hundred_approvals_against_slacks_rate_tiers(
        self, harness: Harness, clock: Clock
    ) -> None:
        """100 requests submitted and approved while the emulator limits every method by
        its tier (windows a hundredth of Slack's): every card ends "invited", and each
        requester's code arrives once."""
        harness.slack.throttle_like_slack(window_scale=0.01)
        timeline = _Timeline(harness, clock)
        replies = await asyncio.gather(
            *(
                harness.submit_request(REQUESTERS[n % 3], remote_short_name=f"p{n}")
                for n in range(BURST)
            )
        )
        assert all(reply.body == {} for reply in replies)
        await harness.settle()
        await timeline.until_sent(1.25, at_most=200)
        ids = [
            int(m["blocks"][0]["text"]["text"].rsplit("#", 1)[1])
            for (where, _ts), m in harness.slack.messages.items()
            if where == APPROVAL_CHANNEL and "thread_ts" not in m
        ]
        assert sorted(ids) == list(range(1, BURST + 1))

        await asyncio.gather(*(harness.click(Action.APPROVE, n, BOB) for n in ids))
        await harness.settle()
        await timeline.until_sent(1.25, at_most=200)

        assert len(harness.simulator.create_calls) == BURST
        invited = await harness.runtime.repository.with_status([Status.INVITED])
        assert sorted(request.id for request in invited) == sorted(ids)
        latest: dict[tuple[str, str], Call] = {}
        for call in harness.slack.calls_to("chat.update"):
            latest[(call.args["channel"], call.args["ts"])] = call
        in_dms = {
            "D" + person: [
                json.dumps(m)
                for (where, _ts), m in harness.slack.messages.items()
                if where == "D" + person
            ]
            for person in REQUESTERS
        }
        for request in invited:
            assert request.card_ref is not None
            channel, ts = request.card_ref.split(":", 1)
            assert latest[(channel, ts)].args["text"].endswith(": invited")
            assert harness.slack.messages[(channel, ts)]["text"].endswith(": invited")
            code = _code(harness, request.fields.connection_name)
            holding = {dm: sum(code in m for m in messages) for dm, messages in in_dms.items()}
            assert holding == {dm: int(dm == "D" + request.requester) for dm in in_dms}


class TestSameSubmissionTwice:
    @pytest.mark.parametrize("together", [False, True], ids=["one_after_the_other", "together"])
    async def test_one_request_one_card(self, harness: Harness, together: bool) -> None:
        """The same signed view_submission (same view id) sent twice, one after the other
        or at once: both are answered with an empty ack; one request, one card."""
        view = harness.opened_view(View.REQUEST.value) or request_modal()
        payload = harness._submission(
            ALICE, View.REQUEST.value, str(view.get("private_metadata") or ""), _state(), "V0SAME"
        )
        if together:
            replies = list(
                await asyncio.gather(
                    harness.post_submission(payload, view), harness.post_submission(payload, view)
                )
            )
        else:
            replies = [
                await harness.post_submission(payload, view),
                await harness.post_submission(payload, view),
            ]
        assert replies == [Reply(200, {}), Reply(200, {})]
        await harness.settle()
        assert (await harness.runtime.repository.count_by_status()) == {"pending_approval": 1}
        assert len(_card_posts(harness)) == 1
        assert len(_in_slack(harness, DM_ALICE, "waiting for approval")) == 1

    async def test_a_replay_after_cancelling_stores_nothing(self, harness: Harness) -> None:
        """Replayed after the request it stored was cancelled: nothing is created again."""
        view = harness.opened_view(View.REQUEST.value) or request_modal()
        payload = harness._submission(
            ALICE, View.REQUEST.value, str(view.get("private_metadata") or ""), _state(), "V0SAME"
        )
        assert await harness.post_submission(payload, view) == Reply(200, {})
        await harness.settle()
        await harness.command("cancel acme_to_partner")
        await harness.settle()
        assert (await harness.runtime.repository.count_by_status()) == {"cancelled": 1}
        again = await harness.post_submission(payload, view)
        assert "errors" not in again.body
        await harness.settle()
        assert (await harness.runtime.repository.count_by_status()) == {"cancelled": 1}
        assert len(_card_posts(harness)) == 1


def _state(**overrides: str) -> dict[str, Any]:
    """The request form's state as Slack sends it: a valid acme_to_partner request."""
    values = {
        "local_short_name": "acme",
        "remote_short_name": "partner",
        "connection_name": "",
        "description": "Support tickets",
    } | overrides
    state: dict[str, Any] = {
        block: {"input": {"type": "plain_text_input", "value": value}}
        for block, value in values.items()
    }
    option = {"value": "SUP", "text": {"type": "plain_text", "text": "SUP"}}
    state["project_key"] = {
        Action.PROJECT.value: {"type": "static_select", "selected_option": option}
    }
    return state
