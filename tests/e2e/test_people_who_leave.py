"""A requester who leaves the workspace gets nothing, not even the invitation code into a
DM nobody reads; the card says so, and an approver hands the request to someone else."""

from __future__ import annotations

import json

from bot.approvals.model import Status
from handlers.ids import Action, Block, View
from tests.e2e.harness import ALICE, BOB, CAROL, Harness


async def _hand_over(harness: Harness, request_id: int, to: str) -> None:
    """Bob clicks Hand over on the card and chooses ``to`` in the form."""
    await harness.click(Action.HAND_OVER, request_id, BOB)
    await harness.slack.wait_for(
        "views.open", lambda call: call.args["view"]["callback_id"] == View.HAND_OVER.value
    )
    state = {Block.NEW_REQUESTER.value: {"input": {"type": "users_select", "selected_user": to}}}
    reply = await harness._submit_modal(View.HAND_OVER, request_id, BOB, state)
    assert reply.body == {}, reply.body
    await harness.settle()


def _code_dms(harness: Harness, user: str, code: str) -> int:
    return sum(
        1
        for call in harness.slack.calls_to("chat.postMessage")
        if call.args.get("channel") == "D" + user and code in json.dumps(call.args)
    )


async def test_a_requester_who_left_before_approval_is_handed_over_then_served(
    harness: Harness,
) -> None:
    """Alice leaves before Bob approves: nothing is created, the card says she left and
    offers Hand over; handed to Carol and approved, the code is Carol's alone."""
    assert (await harness.submit_request()).body == {}
    await harness.settle()
    request_id = await harness.request_id()
    harness.slack.deactivate(ALICE)
    refused = await harness.click(Action.APPROVE, request_id, BOB)
    assert "has left the workspace" in (await harness.private_reply(refused)).args["text"]
    assert harness.simulator.create_calls == []
    await harness.settle()
    card = await harness.card("pending approval")
    assert "has left the workspace" in json.dumps(card.args["blocks"])
    assert Action.HAND_OVER.value in json.dumps(card.args["blocks"])

    await _hand_over(harness, request_id, CAROL)
    handed = await harness.repository_request(request_id)
    assert handed.requester == CAROL
    assert handed.problem is None
    await harness.dm(CAROL, "waiting for approval")
    history = [e.note for e in await harness.runtime.repository.history(request_id)]
    assert f"handed over from {ALICE} to {CAROL}" in history

    await harness.click(Action.APPROVE, request_id, BOB)
    await harness.settle()
    assert (await harness.repository_request(request_id)).status is Status.INVITED
    code = str(next(iter(harness.simulator.connections.values()))["invitationCode"])
    assert _code_dms(harness, CAROL, code) == 1
    assert _code_dms(harness, ALICE, code) == 0


async def test_a_requester_who_left_during_creation_gets_no_code(harness: Harness) -> None:
    """Alice leaves while Exalate creates the connection: her DM is still open, and Slack
    would take a post there, but the code is not sent; it stays stored, the card says
    so, and Hand over sends it to Carol."""
    assert (await harness.submit_request()).body == {}
    await harness.settle()
    request_id = await harness.request_id()
    harness.simulator.hold_creates()
    await harness.click(Action.APPROVE, request_id, BOB)
    await harness.simulator.holds(1)
    harness.slack.deactivate(ALICE)
    harness.simulator.release_creates()
    await harness.settle()
    code = str(next(iter(harness.simulator.connections.values()))["invitationCode"])
    assert _code_dms(harness, ALICE, code) == 0
    stuck = await harness.repository_request(request_id)
    assert (stuck.status, stuck.has_invitation_code) == (Status.INVITED, True)
    card = await harness.slack.wait_for(
        "chat.update", lambda call: "has left the workspace" in json.dumps(call.args["blocks"])
    )
    assert code not in json.dumps(card.args)

    await _hand_over(harness, request_id, CAROL)
    assert _code_dms(harness, CAROL, code) == 1
    assert (await harness.repository_request(request_id)).code_dm_ref is not None


async def test_a_person_who_left_cannot_take_a_request_over(harness: Harness) -> None:
    assert (await harness.submit_request()).body == {}
    await harness.settle()
    request_id = await harness.request_id()
    harness.slack.deactivate(CAROL)
    await harness.click(Action.HAND_OVER, request_id, BOB)
    state = {Block.NEW_REQUESTER.value: {"input": {"type": "users_select", "selected_user": CAROL}}}
    reply = await harness._submit_modal(View.HAND_OVER, request_id, BOB, state)
    assert "deactivated too" in reply.body["errors"][Block.NEW_REQUESTER.value]
    assert (await harness.repository_request(request_id)).requester == ALICE
