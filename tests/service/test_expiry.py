"""What time does: undecided requests expire and free their name; a waiting invitation
earns one reminder to the requester, then one note in the card's thread, and no more."""

from __future__ import annotations

from datetime import timedelta

from bot.approvals.messages import Notice
from bot.approvals.model import Status
from tests.service.world import APPROVAL_TTL, REMIND_AFTER, make_world

SECOND = timedelta(seconds=1)


async def test_a_request_nobody_decides_on_expires_after_the_approval_ttl() -> None:
    world = make_world()
    request = await world.submit()
    world.clock.advance(APPROVAL_TTL - SECOND)
    await world.lifecycle.expire_and_remind()
    await world.flush()
    assert (await world.now(request)).status is Status.PENDING_APPROVAL

    world.clock.advance(SECOND)
    await world.lifecycle.expire_and_remind()
    await world.flush()
    assert (await world.now(request)).status is Status.EXPIRED
    assert ("tell_requester", request.id, "expired") in world.notifier.events
    assert ("update_card", request.id, "expired") in world.notifier.events
    assert not await world.store.name_is_open(request.fields.connection_name, "default")


async def test_a_waiting_invitation_gets_one_reminder_then_one_thread_note_then_silence() -> None:
    world = make_world()
    invited = await world.invited()

    def reminders() -> list[tuple[str, int, str]]:
        kinds = {("remind_requester", "invited"), ("note_in_thread", Notice.INVITE_REMINDER)}
        return [e for e in world.notifier.events if (e[0], e[2]) in kinds]

    world.clock.advance(REMIND_AFTER - SECOND)
    await world.lifecycle.expire_and_remind()
    await world.flush()
    assert reminders() == []

    world.clock.advance(SECOND)
    await world.lifecycle.expire_and_remind()
    await world.flush()
    await world.lifecycle.expire_and_remind()
    await world.flush()
    assert reminders() == [("remind_requester", invited.id, "invited")]

    world.clock.advance(REMIND_AFTER - SECOND)
    await world.lifecycle.expire_and_remind()
    await world.flush()
    assert len(reminders()) == 1
    world.clock.advance(SECOND)  # twice remind_after since the invitation
    await world.lifecycle.expire_and_remind()
    await world.flush()
    assert reminders()[1:] == [("note_in_thread", invited.id, "invite_reminder")]

    for _ in range(3):
        world.clock.advance(REMIND_AFTER * 10)
        await world.lifecycle.expire_and_remind()
        await world.flush()
    assert len(reminders()) == 2
    assert (await world.now(invited)).status is Status.INVITED  # invitations do not expire
