"""The incident store on both databases: one open incident per condition whoever writes
it, cards shared by what opens at once and spaced a minute apart per channel, every
press a compare-and-set with its audit, and what people are told in the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.approvals.messages import Say
from bot.approvals.routes import Rule
from bot.health.model import Condition, Kind, Opening, SiteView
from bot.health.notes import Happened, Note
from bot.health.watch import WatchState
from storage import RequestRepository, make_engine, make_sessionmaker, upgrade_schema
from storage.incidents import CHANNEL_GAP, IncidentRepository

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ALERTS = "C0ALERTS"


@pytest.fixture(name="engine")
async def _engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    await upgrade_schema(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(name="repository")
def _repository(engine: AsyncEngine) -> RequestRepository:
    return RequestRepository(make_sessionmaker(engine))


@pytest.fixture(name="store")
def _store(repository: RequestRepository) -> IncidentRepository:
    return repository.incidents


def error(name: str, site: str = "eu", detail: str = "ERROR") -> Opening:
    return Opening(Condition(site, Kind.CONNECTION, name, detail), ALERTS, None)


async def messages(repository: RequestRepository) -> list[tuple[int | None, Say, str | None]]:
    """What waits in the outbox, in the order it is sent: (card, kind, note)."""
    later, sent = T0 + timedelta(days=1), []
    while items := await repository.outbox.take_due(later, "t", later + timedelta(hours=1)):
        for item in items:
            await repository.outbox.sent(item, later, holder="t")
            sent.append((item.card_id, item.message.say, item.note))
    return sent


async def test_what_opens_at_once_shares_one_card_posted_once(
    store: IncidentRepository, repository: RequestRepository
) -> None:
    opened = await store.open([error(f"c{i}") for i in range(20)], T0)
    assert len(opened) == 20
    assert len({i.card_id for i in opened}) == 1
    posts = [m for m in await messages(repository) if m[1] is Say.POST_INCIDENTS]
    assert len(posts) == 1
    card = await store.card(opened[0].card_id)
    assert card is not None
    assert len(card.open) == 20


async def test_one_open_incident_per_condition_even_when_two_writers_race(
    engine: AsyncEngine,
) -> None:
    stores = [RequestRepository(make_sessionmaker(engine)).incidents for _ in range(2)]
    results = await asyncio.gather(*(s.open([error("to-partner")], T0) for s in stores))
    assert sorted(len(r) for r in results) == [0, 1]
    assert len(await stores[0].open_incidents()) == 1
    assert len(await stores[0].open_cards()) == 1  # the loser's card went with it


async def test_a_batch_meeting_an_open_incident_opens_the_rest(store: IncidentRepository) -> None:
    await store.open([error("b")], T0)
    opened = await store.open([error("a"), error("b"), error("c")], T0)
    assert sorted(i.condition.subject for i in opened) == ["a", "c"]


async def test_a_channel_gets_a_new_card_at_most_once_a_minute(
    store: IncidentRepository, repository: RequestRepository
) -> None:
    first = (await store.open([error("a")], T0))[0]
    await store.set_card(first.card_id, f"{ALERTS}:1.0")
    second = (await store.open([error("b", site="us")], T0 + timedelta(seconds=5)))[0]
    third = (await store.open([error("c", site="us")], T0 + timedelta(seconds=10)))[0]
    assert second.card_id == third.card_id != first.card_id  # not posted yet: it waits
    items = await repository.outbox.take_due(
        T0 + timedelta(seconds=30), "t", T0 + timedelta(hours=1)
    )
    assert [i.card_id for i in items if i.message.say is Say.POST_INCIDENTS] == [first.card_id]
    later = await repository.outbox.take_due(T0 + CHANNEL_GAP, "t2", T0 + timedelta(hours=1))
    assert [i.card_id for i in later if i.message.say is Say.POST_INCIDENTS] == [second.card_id]


async def test_a_change_is_noted_and_a_resolution_closes_once(
    store: IncidentRepository, repository: RequestRepository
) -> None:
    (incident,) = await store.open([error("to-partner")], T0)
    changed = await store.change(incident, "DEACTIVATED", T0 + timedelta(minutes=1))
    assert changed is not None
    assert changed.condition.detail == "DEACTIVATED"
    assert await store.change(incident, "DEACTIVATED", T0) is None  # read before the change
    resolved = await store.resolve(changed, T0 + timedelta(minutes=42))
    assert resolved is not None
    assert resolved.lasted == timedelta(minutes=42)
    assert await store.resolve(changed, T0 + timedelta(minutes=43)) is None
    assert await store.open_incidents() == []
    notes = [Note.from_json(n) for _, say, n in await messages(repository) if n]
    assert [(n.happened, n.minutes) for n in notes] == [
        (Happened.CHANGED, None),
        (Happened.RESOLVED, 42),
    ]
    # resolved, the same condition may open again: a new incident
    assert len(await store.open([error("to-partner")], T0 + timedelta(hours=1))) == 1


async def test_presses_are_compare_and_set_and_audited(store: IncidentRepository) -> None:
    (incident,) = await store.open([error("to-partner")], T0)
    card = await store.card(incident.card_id)
    assert card is not None
    snoozed = await store.snooze(card, "U0DAN", T0 + timedelta(hours=4), T0)
    assert snoozed is not None
    assert snoozed.snoozed_until == T0 + timedelta(hours=4)
    assert await store.acknowledge(card, "U0ERIN", T0) is None  # stale: the snooze came first
    acked = await store.acknowledge(snoozed, "U0ERIN", T0)
    assert acked is not None
    assert acked.acked_by == "U0ERIN"
    assert acked.snoozed_until is None
    assert await store.acknowledge(acked, "U0DAN", T0) is None  # acknowledged once
    assert not await store.remind(acked, T0)
    await store.record(card.id, "U0MALLORY", "refused acknowledge: not an owner", T0)
    history = [(actor, note) for _, actor, note in await store.history(card.id)]
    assert history == [
        ("exalate-bot", "opened: to-partner is ERROR"),
        ("U0DAN", "snoozed until 2026-12-07T13:00+00:00"),
        ("U0ERIN", "acknowledged"),
        ("U0MALLORY", "refused acknowledge: not an owner"),
    ]


async def test_one_reminder_whoever_sends_it(engine: AsyncEngine) -> None:
    stores = [RequestRepository(make_sessionmaker(engine)).incidents for _ in range(2)]
    (incident,) = await stores[0].open([error("to-partner")], T0)
    card = await stores[0].card(incident.card_id)
    assert card is not None
    sent = await asyncio.gather(*(s.remind(card, T0) for s in stores))
    assert sorted(sent) == [False, True]


async def test_owners_and_the_watch_are_kept(store: IncidentRepository) -> None:
    owners = Rule(("S0LEADS",), channel="C0SUPPORT", route=1)
    opening = Opening(Condition("eu", Kind.CONNECTION, "x", "ERROR"), "C0SUPPORT", owners)
    incident, _ = await store.open([opening, error("y")], T0)
    card = await store.card(incident.card_id)
    assert card is not None
    assert card.owners == owners
    assert card.channel == "C0SUPPORT"
    assert len({c.channel for c in await store.open_cards()}) == 2
    state = WatchState(seen={"k": 1}, active={"x"})
    view = SiteView("eu", T0, connections=(("x", "ERROR"),), queues=(("outgoing", 3),))
    await store.save_watch("eu", state, view)
    await store.save_watch("eu", state, view)
    assert (await store.watch("eu")).active == {"x"}
    assert await store.views() == [view]
    assert await store.open_counts() == {("eu", "connection"): 2}
