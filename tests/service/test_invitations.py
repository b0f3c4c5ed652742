"""The poller follows each invitation in Exalate's list: accepted, and gone only after
several polls in a row miss it. A list Exalate does not give whole (``total`` above its
``results``) proves no connection missing, to the poller or to an approval."""

from __future__ import annotations

from datetime import timedelta

from bot.approvals.model import ConnectionRequest, Problem, Status
from bot.service.lifecycle import MISSES_BEFORE_GONE
from tests.service.world import BOB, CAROL, STUCK_AFTER, World, make_world


def remove(world: World, request: ConnectionRequest) -> None:
    del world.exalate().connections[int(request.exalate_connection_id or "")]


async def test_an_accepted_invitation_becomes_active_and_its_code_is_spent() -> None:
    """Once the partner accepts, the code is worth nothing: deleted, its DM edited, the
    requester and the card's thread told."""
    world = make_world()
    invited = await world.invited()
    world.exalate().set_status(invited.fields.connection_name, "ACTIVE")
    await world.lifecycle.poll(world.site())
    await world.flush()

    active = await world.now(invited)
    assert (active.status, active.exalate_status) == (Status.ACTIVE, "ACTIVE")
    assert await world.store.invitation_code(invited.id) is None
    for event in [
        ("tell_requester", invited.id, "active"),
        ("note_in_thread", invited.id, "state_changed"),
        ("close_invitation", invited.id, "active"),
    ]:
        assert event in world.notifier.events


async def test_a_pending_invitation_stays_invited() -> None:
    world = make_world()
    invited = await world.invited()
    for _ in range(MISSES_BEFORE_GONE + 1):
        await world.lifecycle.poll(world.site())
        await world.flush()
    assert (await world.now(invited)).status is Status.INVITED


async def test_an_invitation_is_gone_only_after_enough_polls_in_a_row_miss_it() -> None:
    """One short list during a Jira restart must not delete a code the partner needs."""
    world = make_world()
    invited = await world.invited()
    remove(world, invited)
    for missed in range(1, MISSES_BEFORE_GONE):
        await world.lifecycle.poll(world.site())
        await world.flush()
        still = await world.now(invited)
        assert (still.status, still.missed_polls) == (Status.INVITED, missed)

    await world.lifecycle.poll(world.site())
    await world.flush()
    gone = await world.now(invited)
    assert gone.status is Status.GONE
    assert await world.store.invitation_code(invited.id) is None


async def test_a_poll_that_sees_the_connection_again_starts_the_count_over() -> None:
    """Misses days apart never add up to a disappearance."""
    world = make_world()
    invited = await world.invited()
    connection = world.exalate().connections[int(invited.exalate_connection_id or "")]
    for _ in range(3):
        remove(world, invited)
        for _ in range(MISSES_BEFORE_GONE - 1):
            await world.lifecycle.poll(world.site())
        await world.flush()
        world.exalate().connections[int(connection.id)] = connection
        await world.lifecycle.poll(world.site())
        await world.flush()
    back = await world.now(invited)
    assert (back.status, back.missed_polls) == (Status.INVITED, 0)


async def test_polls_that_find_nothing_new_write_nothing() -> None:
    """Invitations still pending cost a poll no write: a write each would take the
    database's lock once per invitation and void the shared status read every tick."""
    world = make_world()
    for remote in ("p1", "p2", "p3"):
        await world.invited(remote=remote)
    await world.lifecycle.poll(world.site())  # records Exalate's PENDING once
    before = world.store.writes
    await world.lifecycle.poll(world.site())
    await world.flush()
    await world.lifecycle.poll(world.site())
    await world.flush()
    assert world.store.writes == before


async def test_a_status_exalate_changes_is_noted_once() -> None:
    world = make_world()
    invited = await world.invited()
    world.exalate().set_status(invited.fields.connection_name, "Paused")
    for _ in range(3):
        await world.lifecycle.poll(world.site())
        await world.flush()
    assert (await world.now(invited)).exalate_status == "Paused"
    notes = [
        e for e in world.notifier.events if e == ("note_in_thread", invited.id, "exalate_status")
    ]
    assert len(notes) == 1


def beyond_the_first_page(world: World, request: ConnectionRequest, before: int = 3) -> None:
    """Exalate lists ``before`` other connections ahead of the request's, and answers
    two a page without serving the rest: a node that does not page."""
    exalate = world.exalate()
    key = int(request.exalate_connection_id or "")
    connection = exalate.connections.pop(key)
    for n in range(before):
        exalate.add(f"older_{n}")
    exalate.connections[key] = connection
    exalate.page_size = 2


async def test_an_incomplete_list_never_proves_an_invitation_gone() -> None:
    """A connection beyond the one page a node lists is missing from every poll, and is
    never taken for gone; once the whole list is read it is found again."""
    world = make_world()
    invited = await world.invited()
    beyond_the_first_page(world, invited)
    for _ in range(MISSES_BEFORE_GONE + 1):
        await world.lifecycle.poll(world.site())
        await world.flush()
    still = await world.now(invited)
    assert (still.status, still.missed_polls) == (Status.INVITED, 0)

    world.exalate().page_size = None
    world.exalate().set_status(invited.fields.connection_name, "ACTIVE")
    await world.lifecycle.poll(world.site())
    assert (await world.now(invited)).status is Status.ACTIVE


async def test_an_incomplete_list_never_settles_an_interrupted_initiation() -> None:
    """A request left initiating is failed as interrupted only on a whole list's word."""
    world = make_world()
    request = await world.submit()
    for n in range(3):
        world.exalate().add(f"older_{n}")
    world.exalate().page_size = 2
    initiating = await world.store.transition(
        request, Status.INITIATING, actor=BOB, at=world.clock(), decided_by=BOB
    )
    assert initiating is not None
    world.clock.advance(STUCK_AFTER + timedelta(seconds=1))
    await world.lifecycle.poll(world.site())
    assert (await world.now(request)).status is Status.INITIATING

    world.exalate().page_size = None
    await world.lifecycle.poll(world.site())
    failed = await world.now(request)
    assert (failed.status, failed.problem) == (Status.FAILED, Problem.INTERRUPTED)


async def test_an_approval_on_an_incomplete_list_creates_nothing_and_can_be_retried() -> None:
    world = make_world()
    request = await world.submit()
    for n in range(3):
        world.exalate().add(f"older_{n}")
    world.exalate().page_size = 2
    failed = await world.requests.approve(request.id, BOB)
    assert (failed.status, failed.problem) == (Status.FAILED, Problem.EXALATE)
    assert "incomplete" in (failed.error_detail or "")
    assert not any(call.startswith("create") for call in world.exalate().calls)

    world.exalate().page_size = None
    assert (await world.requests.retry(request.id, CAROL)).status is Status.INVITED


async def test_an_incomplete_list_leaves_the_console_made_connections_as_last_seen() -> None:
    """``status`` shows pending connections from the last whole list only."""
    world = make_world()
    world.exalate().add("made_in_console")
    await world.lifecycle.poll(world.site())
    assert [f.name for f in world.listings.foreign_pending()] == ["made_in_console"]
    for n in range(3):
        world.exalate().add(f"newer_{n}")
    world.exalate().page_size = 2
    world.clock.advance(timedelta(minutes=5))
    await world.lifecycle.poll(world.site())
    assert [f.name for f in world.listings.foreign_pending()] == ["made_in_console"]
