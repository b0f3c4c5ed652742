"""What the card and the requester's DM say and offer at each step of the invitation
code's way to the requester (``ConnectionRequest.code_delivery``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.approvals.model import ConnectionRequest, RequestFields, Status
from handlers import blocks

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ADOPTED = "Exalate has this connection, but its invitation code never reached the bot."
REFUSED = "The invitation code could not be sent to the requester by DM (dm_refused)."


def _invited(status: Status = Status.INVITED, **changes: Any) -> ConnectionRequest:
    fields = RequestFields("acme", "partner", "acme_to_partner", "", "SUP")
    values: dict[str, Any] = {"decided_by": "U0BOB", "card_ref": "C1:1"} | changes
    return ConnectionRequest(7, status, 3, fields, "U0ALICE", NOW, NOW, **values)


def _buttons(request: ConnectionRequest) -> list[str]:
    card = blocks.approval_card(request)
    return [e["text"]["text"] for b in card if b["type"] == "actions" for e in b["elements"]]


def _line(request: ConnectionRequest) -> str:
    return str(blocks.approval_card(request)[-1 if not _buttons(request) else -2])


class TestCard:
    def test_never_received_offers_paste(self) -> None:
        """An adopted connection: the card says why and lets an approver paste the code."""
        request = _invited(error=ADOPTED)
        assert _buttons(request) == ["Paste invitation code"]
        assert ":warning:" in _line(request)
        assert "never reached the bot" in _line(request)

    def test_assisted_offers_paste(self) -> None:
        """Created by hand in the console: the code comes back by paste."""
        assisted = _invited(Status.ASSISTED)
        assert _buttons(assisted) == ["Paste invitation code"]

    def test_undelivered_offers_resend(self) -> None:
        """A DM Slack refused: the card says so and offers Resend code."""
        request = _invited(has_invitation_code=True, error=REFUSED)
        assert _buttons(request) == ["Resend code"]
        assert "could not be sent" in _line(request)
        assert "Still not delivered" in blocks.resend_outcome(request)

    def test_delivered_offers_nothing(self) -> None:
        """The code is in the requester's DM: the card says so, with no button."""
        request = _invited(has_invitation_code=True, code_dm_ref="D1:1")
        assert _buttons(request) == []
        assert "was sent privately to <@U0ALICE>" in _line(request)
        assert "Sending the invitation code" in blocks.resend_outcome(request)

    def test_sending_offers_nothing_yet(self) -> None:
        """Between storing the code and recording its DM the card offers no resend: a
        click would send the code twice."""
        assert _buttons(_invited(has_invitation_code=True)) == []


class TestRequesterNote:
    def test_never_received_says_an_approver_brings_it(self) -> None:
        """The requester learns the code did not reach the bot and who will bring it."""
        text, _ = blocks.requester_message(_invited(error=ADOPTED), "C1")
        assert "did not reach me" in text

    def test_delivered_does_not_say_it_was_lost(self) -> None:
        """A note drawn after the code went out never claims it was lost."""
        request = _invited(has_invitation_code=True, code_dm_ref="D1:1")
        text, body = blocks.requester_message(request, "C1")
        assert "did not reach me" not in json.dumps([text, body])
