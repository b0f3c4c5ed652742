"""The in-memory store and the real one on SQLite behave alike where the service relies on
it. Every other test in ``tests/service`` trusts ``InMemoryRequestStore``; this is what
earns that trust: a rule the fake lets slip that the database enforces (or the other way
round) fails here, on both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.approvals.limits import (
    AlreadySubmitted,
    NameTaken,
    SubmissionLimits,
    TooFrequent,
    TooManyOpen,
)
from bot.approvals.messages import CARD, EVERYONE, Message, Notice, Say
from bot.approvals.model import ConnectionRequest, Problem, RequestFields, Status
from bot.approvals.routes import Rule
from bot.ports import OutboxQueue, RequestStore
from storage import RequestRepository, make_engine, make_sessionmaker, upgrade_schema
from tests.fakes.repository import InMemoryRequestStore

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def fields(name: str = "acme_to_partner", site: str = "us") -> RequestFields:
    return RequestFields("acme", "partner", name, "Support sync", "SUP", site)


@pytest.fixture(name="store", params=["memory", "sqlite"])
async def _store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RequestStore]:
    if request.param == "memory":
        yield InMemoryRequestStore()
        return
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await upgrade_schema(engine)
    yield RequestRepository(make_sessionmaker(engine))
    await engine.dispose()


async def moved(
    store: RequestStore, request: ConnectionRequest, target: Status, **changes: object
) -> ConnectionRequest:
    done = await store.transition(request, target, actor="U0BOB", at=T0 + MINUTE, **changes)  # type: ignore[arg-type]
    assert done is not None
    return done


async def test_of_two_moves_from_one_snapshot_only_the_first_is_written(
    store: RequestStore,
) -> None:
    """The compare-and-set on (id, status, version): the loser gets None, and neither its
    state nor its columns reach the store."""
    stored = await store.add(fields(), "U0ALICE", T0)
    won = await moved(store, stored, Status.INITIATING, decided_by="U0BOB")
    lost = await store.transition(stored, Status.REJECTED, actor="U0EVE", at=T0, reason="no")
    assert lost is None
    assert (won.status, won.version, won.decided_by) == (Status.INITIATING, 2, "U0BOB")
    assert await store.get(stored.id) == won


async def test_of_many_concurrent_moves_exactly_one_wins(store: RequestStore) -> None:
    """Racing callers, each from the same snapshot: one winner, one audit row for it."""
    stored = await store.add(fields(), "U0ALICE", T0)
    results = await asyncio.gather(
        *(store.transition(stored, Status.INITIATING, actor=f"U{n}", at=T0) for n in range(5))
    )
    assert sum(result is not None for result in results) == 1
    assert [event.to_status for event in await store.history(stored.id)] == [
        Status.PENDING_APPROVAL,
        Status.INITIATING,
    ]


async def test_a_move_the_life_cycle_lacks_is_refused(store: RequestStore) -> None:
    stored = await store.add(fields(), "U0ALICE", T0)
    with pytest.raises(ValueError, match="not a transition"):
        await store.transition(stored, Status.ACTIVE, actor="U0BOB", at=T0)


async def test_only_the_writable_columns_may_be_written(store: RequestStore) -> None:
    """The version, the status and the card are the store's own: no caller writes them
    as a side change."""
    stored = await store.add(fields(), "U0ALICE", T0)
    with pytest.raises(ValueError, match="not writable"):
        await store.annotate(stored.id, version=7)
    with pytest.raises(ValueError, match="not writable"):
        await store.transition(stored, Status.INITIATING, actor="U0BOB", at=T0, card_ref="x")
    assert await store.get(stored.id) == stored


async def test_a_move_clears_the_error_unless_it_gives_one_and_is_audited(
    store: RequestStore,
) -> None:
    stored = await store.add(fields(), "U0ALICE", T0)
    initiating = await moved(store, stored, Status.INITIATING)
    failed = await moved(
        store, initiating, Status.FAILED, error=Problem.EXALATE, error_detail="Jira is down"
    )
    retried = await moved(store, failed, Status.INITIATING)
    assert (failed.problem, failed.error_detail) == (Problem.EXALATE, "Jira is down")
    assert (retried.error, retried.error_detail) == (None, None)
    assert retried.updated_at == T0 + MINUTE
    history = await store.history(stored.id)
    assert [(e.actor, e.from_status, e.to_status) for e in history] == [
        ("U0ALICE", None, Status.PENDING_APPROVAL),
        ("U0BOB", Status.PENDING_APPROVAL, Status.INITIATING),
        ("U0BOB", Status.INITIATING, Status.FAILED),
        ("U0BOB", Status.FAILED, Status.INITIATING),
    ]


async def test_an_open_name_is_taken_within_its_site_in_any_case(store: RequestStore) -> None:
    """Two open requests of one site may not share a name; another site's may, and a
    closed request frees its name."""
    first = await store.add(fields(), "U0ALICE", T0)
    with pytest.raises(NameTaken):
        await store.add(fields("ACME_TO_PARTNER"), "U0DAN", T0)
    await store.add(fields(site="eu"), "U0DAN", T0)
    assert await store.name_is_open("Acme_To_Partner", "us")
    assert await store.name_is_open("acme_to_partner", "eu")
    await moved(store, first, Status.REJECTED, reason="squatted")
    assert not await store.name_is_open("acme_to_partner", "us")
    await store.add(fields("Acme_to_Partner"), "U0DAN", T0)
    assert await store.sites_named("ACME_to_partner") == ["eu", "us"]


async def test_too_many_open_names_the_waiting_requests_and_when_the_oldest_began(
    store: RequestStore,
) -> None:
    limits = SubmissionLimits(max_open=2, per_hour=10)
    first = await store.add(fields("a"), "U0ALICE", T0, limits)
    await store.add(fields("b"), "U0ALICE", T0 + MINUTE, limits)
    await store.add(fields("c"), "U0DAN", T0 + MINUTE, limits)  # someone else's
    with pytest.raises(TooManyOpen) as refused:
        await store.add(fields("e"), "U0ALICE", T0 + 2 * MINUTE, limits)
    assert (refused.value.names, refused.value.oldest) == (["a", "b"], T0)
    assert (await store.page(limit=10, requester="U0ALICE")).total == 2  # nothing stored
    await moved(store, first, Status.CANCELLED)
    await store.add(fields("d"), "U0ALICE", T0 + 2 * MINUTE, limits)


async def test_too_frequent_frees_up_an_hour_after_the_submission_it_counts(
    store: RequestStore,
) -> None:
    limits = SubmissionLimits(max_open=10, per_hour=2)
    await store.add(fields("a"), "U0ALICE", T0, limits)
    await store.add(fields("b"), "U0ALICE", T0 + 10 * MINUTE, limits)
    with pytest.raises(TooFrequent) as refused:
        await store.add(fields("c"), "U0ALICE", T0 + 20 * MINUTE, limits)
    assert refused.value.free_at == T0 + timedelta(hours=1)
    await store.add(fields("c"), "U0ALICE", refused.value.free_at, limits)


async def test_a_page_keeps_to_its_filters_newest_first_with_the_whole_count(
    store: RequestStore,
) -> None:
    oldest = await store.add(fields("a"), "U0ALICE", T0)
    await store.add(fields("b"), "U0DAN", T0 + MINUTE)
    await store.add(fields("c"), "U0ALICE", T0 + 2 * MINUTE)
    await store.add(fields("a", site="eu"), "U0ALICE", T0 + 3 * MINUTE)

    us = await store.page(limit=2, site="us")
    assert ([r.fields.connection_name for r in us.items], us.total) == (["c", "b"], 3)
    eu = await store.page([Status.PENDING_APPROVAL], limit=10, site="eu")
    assert ([(r.fields.connection_name, r.fields.site) for r in eu.items], eu.total) == (
        [("a", "eu")],
        1,
    )
    none = await store.page([Status.INVITED], limit=10)
    assert (none.items, none.total) == ((), 0)

    await store.transition(oldest, Status.REJECTED, actor="U0BOB", at=T0 + 5 * MINUTE)
    changed = await store.page(limit=10, changed_since=T0 + 2 * MINUTE)
    assert [r.fields.connection_name for r in changed.items] == ["a", "a", "c"]
    assert [r.fields.site for r in changed.items] == ["us", "eu", "us"]  # latest change first
    named = await store.named("A", site="us")
    assert named is not None
    assert named.status is Status.REJECTED


def queue_of(store: RequestStore) -> OutboxQueue:
    queue: OutboxQueue = store.outbox  # type: ignore[attr-defined]  # both stores have one
    return queue


async def test_a_new_request_leaves_its_card_to_the_outbox(store: RequestStore) -> None:
    """The card is posted by the outbox (no card yet); posted, the request has it."""
    stored = await store.add(fields(), "U0ALICE", T0)
    assert stored.card_ref is None
    (item,) = await queue_of(store).take_due(T0, "me", T0 + MINUTE)
    assert (item.request_id, item.message) == (stored.id, Message(Say.POST_CARD))
    await store.set_card(stored.id, "C0CARDS:1")
    posted = await store.get(stored.id)
    assert posted is not None
    assert posted.card_ref == "C0CARDS:1"


async def test_messages_are_written_only_with_a_write_that_hit(store: RequestStore) -> None:
    """A lost race tells nobody anything; the winner's messages carry the request as
    it became."""
    queue = queue_of(store)
    stored = await store.add(fields(), "U0ALICE", T0)
    (post,) = await queue.take_due(T0, "me", T0 + MINUTE)
    await queue.sent(post, T0, holder="me")
    won = await store.transition(stored, Status.REJECTED, actor="U0BOB", at=T0, tell=EVERYONE)
    lost = await store.transition(stored, Status.CANCELLED, actor="U0ALICE", at=T0, tell=EVERYONE)
    assert won is not None
    assert lost is None
    due = await queue.take_due(T0, "me", T0 + MINUTE)
    assert [i.message for i in due] == list(EVERYONE)  # two lanes: both heads are due
    assert all(i.snapshot is not None and i.snapshot.status is Status.REJECTED for i in due)


async def test_a_lane_goes_in_order_each_message_to_one_holder(store: RequestStore) -> None:
    """Only a lane's head is due; it is handed to one taker; a hold that runs out frees it."""
    queue = queue_of(store)
    stored = await store.add(fields(), "U0ALICE", T0)
    await store.tell(stored, [Message(Say.NOTE, Notice.STATE_CHANGED)], T0)
    takers = await asyncio.gather(*(queue.take_due(T0, f"r{n}", T0 + MINUTE) for n in range(3)))
    held = [taken for taken in takers if taken]
    assert len(held) == 1  # one taker, one message: the note waits behind its card
    (head,) = held[0]
    assert head.message.say is Say.POST_CARD
    assert await queue.take_due(T0, "r8", T0 + MINUTE) == []  # held: nobody else sends it
    (again,) = await queue.take_due(T0 + 2 * MINUTE, "r9", T0 + 3 * MINUTE)  # hold ran out
    assert again.id == head.id
    await queue.sent(again, T0, holder="r9")
    (note,) = await queue.take_due(T0 + 2 * MINUTE, "r9", T0 + 3 * MINUTE)
    assert note.message == Message(Say.NOTE, Notice.STATE_CHANGED)


async def test_a_redraw_takes_the_older_redraws_with_it(store: RequestStore) -> None:
    queue = queue_of(store)
    stored = await store.add(fields(), "U0ALICE", T0)
    (post,) = await queue.take_due(T0, "me", T0 + MINUTE)
    await queue.sent(post, T0, holder="me")
    await store.tell(stored, [CARD, CARD, CARD], T0)
    (first,) = await queue.take_due(T0, "me", T0 + MINUTE)
    newest = await queue.newest_redraw(first)
    assert newest is not None
    assert newest > first.id
    await queue.sent(replace(first, id=newest), T0, holder="me")
    assert await queue.take_due(T0, "me", T0 + MINUTE) == []
    assert await queue.waiting() == 0


async def test_a_parked_message_waits_for_its_cause(store: RequestStore) -> None:
    """Parked, it is not due until its time, or until its cause is seen gone."""
    queue = queue_of(store)
    stored = await store.add(fields(), "U0ALICE", T0)
    (post,) = await queue.take_due(T0, "me", T0 + MINUTE)
    await queue.later(post, T0 + 10 * MINUTE, parked="is_archived")
    assert await queue.take_due(T0 + MINUTE, "me", T0 + 2 * MINUTE) == []
    assert await queue.parked() == {"is_archived": 1}
    await queue.unpark({"token_revoked"}, T0 + MINUTE)
    assert await queue.take_due(T0 + MINUTE, "me", T0 + 2 * MINUTE) == []
    await queue.unpark({"is_archived"}, T0 + MINUTE)
    (again,) = await queue.take_due(T0 + MINUTE, "me", T0 + 2 * MINUTE)
    assert (again.id, again.attempts, again.parked) == (post.id, 1, "is_archived")
    await queue.sent(again, T0 + MINUTE, holder="me")
    assert await queue.parked() == {}
    assert stored.id == again.request_id


async def test_a_form_stores_one_request_however_often_it_arrives(store: RequestStore) -> None:
    first = await store.add(fields(), "U0ALICE", T0, view_id="V123")
    with pytest.raises(AlreadySubmitted) as again:
        await store.add(fields("other"), "U0ALICE", T0, view_id="V123")
    assert again.value.request.id == first.id
    found = await store.submitted_from("V123")
    assert found is not None
    assert found.id == first.id
    assert await store.submitted_from("V999") is None


async def test_a_code_is_stored_once_and_only_on_an_invitation(store: RequestStore) -> None:
    stored = await store.add(fields(), "U0ALICE", T0)
    assert await store.store_code(stored.id, b"sealed") is None  # not invited
    initiating = await moved(store, stored, Status.INITIATING)
    invited = await moved(store, initiating, Status.INVITED, exalate_connection_id="154")
    assert not invited.has_invitation_code
    kept = await store.store_code(stored.id, b"sealed")
    assert kept is not None
    assert kept.has_invitation_code
    assert await store.store_code(stored.id, b"other") is None
    assert await store.invitation_code(stored.id) == b"sealed"
    assert await store.claimed_connections("us") == ({"154"}, set())


async def test_a_reminder_and_a_status_are_counted_once(store: RequestStore) -> None:
    """Of two pollers reading the same copy, one sends the reminder and one announces
    the status Exalate reports."""
    stored = await store.add(fields(), "U0ALICE", T0)
    initiating = await moved(store, stored, Status.INITIATING)
    invited = await moved(store, initiating, Status.INVITED)
    assert [await store.claim_reminder(invited), await store.claim_reminder(invited)] == [
        True,
        False,
    ]
    noted = await store.note_status(invited, "UNKNOWN")
    assert noted is not None
    assert noted.exalate_status == "UNKNOWN"
    assert noted.reminders_sent == 1
    assert noted.version == invited.version
    assert await store.note_status(invited, "UNKNOWN") is None


async def test_every_write_is_counted(store: RequestStore) -> None:
    """A shared read goes stale on each write this process made, lost races included."""
    before = store.writes
    stored = await store.add(fields(), "U0ALICE", T0)
    await moved(store, stored, Status.CANCELLED)
    await store.transition(stored, Status.REJECTED, actor="U0BOB", at=T0)  # lost
    await store.record(stored, "U0ALICE", T0, "looked")
    assert store.writes == before + 4


TWO_LEADS = Rule(("S0LEADS",), approvals=2, channel="C0SUPPORT", route=1)


async def test_a_request_keeps_its_rule_and_approvals_count_by_compare_and_set(
    store: RequestStore,
) -> None:
    """The rule is stored with the request; approvals from one snapshot: the first
    counts, the second (same count read) gets None; the last needed one moves it."""
    stored = await store.add(fields(), "U0ALICE", T0, route=TWO_LEADS)
    assert stored.route == TWO_LEADS
    assert (await store.get(stored.id)) == stored
    one = await store.approve(stored, "U0DAN", at=T0, complete=False, note="approved (1 of 2)")
    assert one is not None
    assert (one.status, one.version, one.approved_by) == (Status.PENDING_APPROVAL, 1, ("U0DAN",))
    assert one.updated_at == T0  # an approval short of the count changes no state
    lost = await store.approve(stored, "U0ERIN", at=T0, complete=False, note="approved (1 of 2)")
    assert lost is None
    done = await store.approve(
        one, "U0ERIN", at=T0 + MINUTE, complete=True, note="approved (2 of 2)", decided_by="U0ERIN"
    )
    assert done is not None
    assert (done.status, done.version, done.decided_by) == (Status.INITIATING, 2, "U0ERIN")
    assert done.approved_by == ("U0DAN", "U0ERIN")
    notes = [(e.actor, e.from_status, e.to_status, e.note) for e in await store.history(stored.id)]
    assert notes[1:] == [
        ("U0DAN", Status.PENDING_APPROVAL, Status.PENDING_APPROVAL, "approved (1 of 2)"),
        ("U0ERIN", Status.PENDING_APPROVAL, Status.INITIATING, "approved (2 of 2)"),
    ]
    assert await store.approve(done, "U0EVE", at=T0, complete=True, note="approved") is None


async def test_concurrent_approvals_from_one_snapshot_count_once(store: RequestStore) -> None:
    stored = await store.add(fields(), "U0ALICE", T0, route=TWO_LEADS)
    results = await asyncio.gather(
        *(
            store.approve(stored, f"U{n}", at=T0, complete=False, note="approved (1 of 2)")
            for n in range(5)
        )
    )
    assert sum(result is not None for result in results) == 1
    assert len((await store.get(stored.id)).approved_by) == 1  # type: ignore[union-attr]


async def test_an_approval_after_a_decision_is_not_counted(store: RequestStore) -> None:
    stored = await store.add(fields(), "U0ALICE", T0, route=TWO_LEADS)
    await moved(store, stored, Status.REJECTED, decided_by="U0BOB")
    assert await store.approve(stored, "U0DAN", at=T0, complete=False, note="approved") is None


async def test_an_escalation_is_marked_once_and_only_while_waiting(store: RequestStore) -> None:
    stored = await store.add(fields(), "U0ALICE", T0, route=TWO_LEADS)
    marks = await asyncio.gather(
        *(store.escalate(stored, at=T0 + MINUTE, tell=[CARD]) for _ in range(3))
    )
    assert sum(mark is not None for mark in marks) == 1
    assert (await store.get(stored.id)).escalated_at == T0 + MINUTE  # type: ignore[union-attr]
    other = await store.add(fields("acme_to_other"), "U0ALICE", T0, route=TWO_LEADS)
    await moved(store, other, Status.CANCELLED)
    assert await store.escalate(other, at=T0) is None
