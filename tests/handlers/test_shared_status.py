"""Concurrent ``/exalate status`` asks share one rendering only while it is theirs too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.approvals.model import ConnectionRequest, ForeignInvitation, Page, RequestFields, Status
from handlers import blocks
from handlers.shared_status import SharedStatus, ack_body

NOW = datetime(2026, 11, 26, 12, 0, 0, 100_000, tzinfo=UTC)
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"


def _request(
    number: int, status: Status = Status.PENDING_APPROVAL, **changes: Any
) -> ConnectionRequest:
    fields = RequestFields("acme", f"p{number}", f"acme_to_p{number}", "d", "SUP")
    values: dict[str, Any] = {
        "id": number,
        "status": status,
        "version": 1,
        "fields": fields,
        "requester": ALICE,
        "created_at": NOW - timedelta(minutes=number),
        "updated_at": NOW - timedelta(seconds=30),
    }
    return ConnectionRequest(**(values | changes))


PAGE = Page((_request(1), _request(2, Status.INVITED, has_invitation_code=True)), 2)
"""Alice's second request awaits the partner with a code: her list has a Show code button."""
NO_FOREIGN: tuple[ForeignInvitation, ...] = ()


def _answer(
    shared: SharedStatus,
    viewer: str,
    *,
    page: Page = PAGE,
    now: datetime = NOW,
    foreign: tuple[ForeignInvitation, ...] = NO_FOREIGN,
) -> str:
    return shared.answer(page, now, viewer, foreign=foreign, listed_at=NOW)


def _rendered(viewer: str, now: datetime = NOW, page: Page = PAGE) -> str:
    text, body = blocks.status_message(page, now, viewer, foreign=NO_FOREIGN, listed_at=NOW)
    return ack_body(text, body)


class TestSharedStatus:
    def test_asks_about_the_same_page_in_the_same_second_share_one_answer(self) -> None:
        """Bob's and Carol's lists have no button of theirs: Carol gets Bob's answer, the
        very string, rendered when Bob asked."""
        shared = SharedStatus()
        first = _answer(shared, BOB)
        assert first == _rendered(BOB)
        assert _answer(shared, CAROL, now=NOW + timedelta(milliseconds=800)) is first

    def test_a_requester_with_a_code_to_show_gets_a_rendering_of_their_own(self) -> None:
        """Alice's answer has her Show code button, and the shared answer stays without it."""
        shared = SharedStatus()
        for_bob = _answer(shared, BOB)
        for_alice = _answer(shared, ALICE)
        assert for_alice == _rendered(ALICE)
        assert "Show code" in for_alice
        assert "Show code" not in for_bob
        assert _answer(shared, CAROL) is for_bob

    def test_the_first_ask_being_the_requesters_shares_nothing_of_hers(self) -> None:
        shared = SharedStatus()
        _answer(shared, ALICE)
        assert "Show code" not in _answer(shared, BOB)

    def test_who_has_a_code_to_show_is_found_again_on_each_page(self) -> None:
        """Alice's code, stored after the last read, shows on the next page's answer."""
        shared = SharedStatus()
        before = Page((_request(1), _request(2, Status.INVITED)), 2)
        assert "Show code" not in _answer(shared, ALICE, page=before)
        assert _answer(shared, ALICE) == _rendered(ALICE)
        assert "Show code" in _answer(shared, ALICE)

    def test_another_page_is_rendered_afresh(self) -> None:
        """A new read (after a transition, or once the shared read is too old) is a new
        page, equal or not: its answer is never one rendered for an earlier read."""
        shared = SharedStatus()
        _answer(shared, BOB)
        newer = Page((_request(1, Status.INITIATING),), 1)
        assert _answer(shared, BOB, page=newer) == _rendered(BOB, page=newer)
        same_content = Page(PAGE.items, PAGE.total)
        first = _answer(shared, BOB, page=same_content)
        assert _answer(shared, BOB, page=same_content) is first
        assert _answer(shared, BOB) is not first

    def test_the_next_second_is_rendered_afresh(self) -> None:
        """Ages are shown to the second: an answer serves within the second it was made."""
        shared = SharedStatus()
        first = _answer(shared, BOB)
        later = NOW + timedelta(seconds=1)
        assert _answer(shared, CAROL, now=later) is not first
        assert _answer(shared, CAROL, now=later) == _rendered(CAROL, now=later)

    def test_a_new_list_of_outside_connections_is_rendered_afresh(self) -> None:
        shared = SharedStatus()
        _answer(shared, BOB)
        foreign = (ForeignInvitation("console_made", "9", NOW),)
        answer = json.loads(_answer(shared, BOB, foreign=foreign))
        assert "console_made" in json.dumps(answer["blocks"])
