"""Block Kit builders stay inside Slack's limits and keep user text inert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.approvals.model import (
    AuditEvent,
    ConnectionRequest,
    ForeignInvitation,
    Page,
    RequestFields,
    Status,
)
from bot.ports import JiraProject
from bot.sandbox.slack_emulator.block_kit import block_problems
from handlers import blocks

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _request(status: Status = Status.PENDING_APPROVAL, **changes: Any) -> ConnectionRequest:
    fields = RequestFields("a" * 50, "b" * 50, "c" * 255, "&<>" * 333, "SUP")
    values: dict[str, Any] = {
        "id": 7,
        "status": status,
        "version": 1,
        "fields": fields,
        "requester": "U0ALICE",
        "created_at": NOW - timedelta(hours=3),
        "updated_at": NOW,
        "decided_by": "U0BOB",
        "reason": "<!channel> " + "x" * 990,
        "error": "&" * 2000,
        "card_ref": "C1:1",
        "has_invitation_code": True,
    }
    return ConnectionRequest(**(values | changes))


def _validate(message_blocks: list[dict[str, Any]]) -> None:
    """slack_sdk's models check each block's documented limits."""
    assert len(message_blocks) <= blocks.MAX_MESSAGE_BLOCKS
    for model in Block.parse_all(message_blocks):
        assert model is not None
        model.validate_json()
    assert all(len(text) <= 3000 for text in _texts(message_blocks))


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        return found + [t for value in node.values() for t in _texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in _texts(value)]
    return []


class TestLimits:
    @pytest.mark.parametrize("status", list(Status))
    def test_card_with_longest_fields_is_valid_in_every_state(self, status: Status) -> None:
        """Maximal field lengths, escaped, still fit every block of the card."""
        _validate(blocks.approval_card(_request(status)))

    @pytest.mark.parametrize("count", [0, 3, 100, 101, 500])
    def test_request_modal_is_a_valid_view(self, count: int) -> None:
        """The form validates with any number of projects, static or type-ahead."""
        projects = [JiraProject(key=f"K{n}", name="n" * 200) for n in range(count)]
        view = blocks.request_modal(local="acme", project="K1", projects=projects)
        View(**view).validate_json()
        element = view["blocks"][-1]["element"]
        assert element["type"] == ("static_select" if 0 < count <= 100 else "external_select")

    def test_reject_modal_is_a_valid_view(self) -> None:
        """The reason form validates and carries only the request id and fingerprint."""
        view = blocks.reject_modal(_request())
        View(**view).validate_json()
        assert view["private_metadata"] == f"7:{_request().fingerprint}"

    def test_status_stays_under_fifty_blocks(self) -> None:
        """However many requests, the answer fits one message and says how many it left out."""
        shown = tuple(_request(id=n) for n in range(blocks.LIST_MAX))
        text, body = blocks.status_message(Page(shown, 200), NOW, "U0ALICE")
        _validate(body)
        assert "200" in text
        assert "more" in json.dumps(body[-1])

    def test_every_mrkdwn_text_is_verbatim(self) -> None:
        """A bare URL or #channel in a description stays text: no mrkdwn object the bot
        draws lets Slack turn plain words into links or mentions."""
        request = _request(
            Status.INVITED,
            fields=RequestFields("acme", "p", "acme_to_p", "see https://x.io", "SUP"),
        )
        drawn = [
            blocks.approval_card(request),
            blocks.requester_message(request, "C1")[1],
            blocks.status_message(Page((request,), 1), NOW, "U0BOB")[1],
            blocks.invitation_dm(request, "CODE")[1],
        ]
        texts = [node for node in _nodes(drawn) if node.get("type") == "mrkdwn"]
        assert texts
        assert all(text.get("verbatim") is True for text in texts)

    def test_status_with_outside_connections_stays_a_valid_message(self) -> None:
        """The most requests status lists, and the outside-Slack list, in one message
        Slack accepts: at most 50 blocks, each within its limits."""
        shown = tuple(_request(id=n) for n in range(blocks.STATUS_LIST_MAX))
        foreign = [
            ForeignInvitation(f"console_{n:03d}_" + "x" * 200, str(n), NOW - timedelta(days=n))
            for n in range(40)
        ]
        _, body = blocks.status_message(
            Page(shown, 200), NOW, "U0ALICE", foreign=foreign, listed_at=NOW
        )
        assert block_problems(body) == []
        listed = body[-2]["text"]["text"]
        assert listed.endswith("more.")
        assert len(listed.splitlines()) - 1 + int(listed.split("…and ")[1].split()[0]) == 40

    def test_home_with_many_requests_is_a_valid_view(self) -> None:
        """The App Home stays a valid view (at most 100 blocks) with long lists everywhere."""
        many = Page(tuple(_request(Status.INVITED, id=n) for n in range(15)), 300)
        view = blocks.home_view(
            viewer="U0ALICE", now=NOW, mine=many, awaiting_me=many, invitations=many, accepted=many
        )
        View(**view).validate_json()
        assert len(view["blocks"]) <= 100

    def test_long_history_keeps_its_start_and_its_latest(self) -> None:
        """A history longer than a message shows the first events and the newest ones."""
        events = [
            AuditEvent(
                7,
                NOW + timedelta(minutes=n),
                "U0ALICE",
                Status.INVITED,
                Status.INVITED,
                f"event {n}",
            )
            for n in range(120)
        ]
        _, body = blocks.history_message(_request(), events)
        _validate(body)
        text = json.dumps(body)
        assert "event 0" in text
        assert "event 119" in text
        assert "events left out" in text

    def test_invitation_dm_is_valid(self) -> None:
        """The code message validates."""
        _, body = blocks.invitation_dm(_request(Status.INVITED), "CODE-" + "x" * 500)
        _validate(body)


class TestEscaping:
    def test_user_text_cannot_mention_or_link(self) -> None:
        """&, < and > are escaped, so <!channel> or <http://x|y> stay text."""
        card = json.dumps(blocks.approval_card(_request(Status.REJECTED)))
        assert "<!channel>" not in card
        assert "&lt;!channel&gt;" in card

    def test_cut_never_splits_an_entity(self) -> None:
        """Escaped text cut to a limit ends on a whole entity, marked with an ellipsis."""
        cut = blocks.escape("&" * 1000, limit=2000)
        assert len(cut) <= 2000
        assert cut.endswith("&amp;…")

    def test_buttons_carry_only_the_request_id(self) -> None:
        """Decision buttons hold the id and the fingerprint, nothing else."""
        card = blocks.approval_card(_request())
        values = [e["value"] for b in card if b["type"] == "actions" for e in b["elements"]]
        assert values == [f"7:{_request().fingerprint}"] * 2


def _nodes(node: Any) -> list[dict[str, Any]]:
    """Every object nested in ``node``."""
    if isinstance(node, dict):
        return [node, *(found for value in node.values() for found in _nodes(value))]
    if isinstance(node, list):
        return [found for item in node for found in _nodes(item)]
    return []
