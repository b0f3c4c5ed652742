"""The invitation code goes to the requester privately, is stored sealed, and survives a
DM that Slack refuses."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.approvals.errors import NotAllowed
from bot.approvals.model import CodeDelivery, ConnectionRequest, Problem, Status
from bot.ports import DeliveryFailed
from tests.fakes.notifier import RecordingNotifier
from tests.service.world import ALICE, BOB, EVE, make_world

CODE = "CODE0001"  # FakeExalate's first invitation code


@dataclass
class DMsClosed(RecordingNotifier):
    """A requester whose Slack refuses DMs from the bot until they open its Messages tab."""

    closed: bool = True

    async def deliver_invitation(self, request: ConnectionRequest, code: str) -> str:
        if self.closed:
            raise DeliveryFailed("messages_tab_disabled")
        return await super().deliver_invitation(request, code)


async def test_the_code_reaches_the_requester_and_nowhere_else() -> None:
    """Delivered once, by the private path; no card, note, error or audit entry holds it."""
    world = make_world()
    invited = await world.invited()
    assert world.notifier.codes == [(invited.id, CODE)]
    assert invited.code_delivery is CodeDelivery.DELIVERED
    assert not any(CODE in str(event) for event in world.notifier.events)
    assert not any(CODE in str(event) for event in await world.store.history(invited.id))
    assert CODE not in repr(await world.now(invited))


async def test_the_code_is_stored_sealed() -> None:
    """The store holds bytes only the vault's key opens: a copied database reveals no code."""
    world = make_world()
    invited = await world.invited()
    sealed = await world.store.invitation_code(invited.id)
    assert sealed is not None
    assert CODE.encode() not in sealed
    assert world.vault.open(sealed) == CODE


async def test_a_refused_dm_keeps_the_code_for_resend_code() -> None:
    """The connection exists and its code is only in the bot: a DM Slack refuses must
    not lose it. The requester (or an approver) resends it once DMs work."""
    notifier = DMsClosed()
    world = make_world(notifier=notifier)
    invited = await world.invited()
    assert invited.status is Status.INVITED
    assert invited.code_delivery is CodeDelivery.UNDELIVERED
    assert (invited.problem, invited.error_detail) == (Problem.UNDELIVERED, "messages_tab_disabled")
    assert notifier.codes == []
    assert await world.store.invitation_code(invited.id) is not None

    with pytest.raises(NotAllowed):
        await world.codes.resend_code(invited.id, EVE)
    notifier.closed = False
    resending = await world.codes.resend_code(invited.id, ALICE)
    assert resending.code_delivery is CodeDelivery.SENDING
    await world.flush()
    resent = await world.now(invited)
    assert notifier.codes == [(invited.id, CODE)]
    assert (resent.code_delivery, resent.error, resent.error_detail) == (
        CodeDelivery.DELIVERED,
        None,
        None,
    )
    with pytest.raises(NotAllowed, match="delivered already"):
        await world.codes.resend_code(invited.id, BOB)
    assert len(notifier.codes) == 1
