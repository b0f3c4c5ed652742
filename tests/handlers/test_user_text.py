"""What people write (a description, a reason) is shown as their words, whole: it cannot
pass for the bot's own on the card, and no message has to cut it."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.approvals.errors import ApprovalError
from bot.approvals.model import ConnectionRequest, RequestFields, Status
from bot.approvals.rules import SENT_MAX, Draft, Field, check_draft, sent_length
from bot.sandbox.slack_emulator.block_kit import block_problems
from handlers import blocks
from handlers.blocks.text import PLAIN_TEXT_MAX, as_written, escape, user_text
from handlers.views import read_rejection

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# A description dressed up as a second card: reversed words, blank lines, a bold
# "heading", emoji codes and a broadcast.
DRESSED_UP = (
    "Support sync\n\n\n\n \u200b \n\u2800\n"
    "\u202e:kcehc_etihw: devorppA\u202c\n"
    "*Approved by <@U0BOB>* :white_check_mark: <!channel>\r\n\r\n\r\nDone."
)


def _request(status: Status = Status.PENDING_APPROVAL, **changes: Any) -> ConnectionRequest:
    values: dict[str, Any] = {
        "id": 7,
        "status": status,
        "version": 1,
        "fields": RequestFields("acme", "partner", "acme_to_partner", DRESSED_UP, "SUP"),
        "requester": "U0ALICE",
        "created_at": NOW,
        "updated_at": NOW,
        "decided_by": "U0BOB",
        "card_ref": "C1:1",
    }
    return ConnectionRequest(**(values | changes))


def _mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [t for value in node.values() for t in _mrkdwn_texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in _mrkdwn_texts(value)]
    return []


def _plain_sections(card: list[dict[str, Any]]) -> list[dict[str, Any]]:
    texts = [block.get("text") or {} for block in card if block["type"] == "section"]
    return [text for text in texts if text.get("type") == "plain_text"]


class TestAsWritten:
    def test_bidi_controls_are_removed(self) -> None:
        """Overrides, embeddings, isolates and marks cannot reorder what is shown."""
        assert as_written(f"a{BIDI_CONTROLS}b") == "ab"

    def test_runs_of_blank_lines_become_one(self) -> None:
        """Lines of nothing, of spaces or of invisible characters are blank lines; a run
        of them is one, and none is left at either end. Every line break is ``\\n``."""
        text = "\n \n\u200bfirst\r\n\r\n \t\n\u200b\n\u2800\u3164\nsecond\u2028third\n\n"
        assert as_written(text) == "\u200bfirst\n\nsecond\nthird"

    def test_ordinary_text_is_kept(self) -> None:
        """Words, single line breaks, emoji and right-to-left script stay as written."""
        text = "Sync 🚀 tickets\n\u05e2\u05d1\u05e8\u05d9\u05ea & <b>"
        assert as_written(text) == text


class TestUserText:
    def test_shown_as_plain_text_under_a_label(self) -> None:
        """The bot's label in mrkdwn; the words in plain_text without emoji codes, so no
        bold, emoji, mention, link or quote in them renders; escaped like any text."""
        label, words = user_text("*Description*", "*Approved* :tada: <!channel>")
        assert label["type"] == "context"
        assert label["elements"][0]["text"] == "*Description*"
        assert words["text"] == {
            "type": "plain_text",
            "text": "*Approved* :tada: &lt;!channel&gt;",
            "emoji": False,
        }

    def test_blank_text_shows_nothing(self) -> None:
        assert user_text("*Description*", " \n\u200e\n ") == []

    @pytest.mark.parametrize("text", ["&" * 1000, "x<" * 700 + "&", "a" * 6001])
    def test_long_text_is_split_never_cut(self, text: str) -> None:
        """However much escaping grows it, every character arrives, in sections Slack
        takes, none split inside an entity."""
        _, *sections = user_text("*Reason*", text)
        pieces = [section["text"]["text"] for section in sections]
        assert all(0 < len(piece) <= PLAIN_TEXT_MAX for piece in pieces)
        assert all(html.unescape(piece).count("&") == piece.count("&amp;") for piece in pieces)
        assert "".join(pieces) == escape(text, limit=10**6)


class TestCard:
    def test_a_description_cannot_dress_up_as_the_card(self) -> None:
        """The finding: bold headings, emoji codes, blank lines and a right-to-left
        override survived in the card's mrkdwn. Now none of it is in mrkdwn at all."""
        card = blocks.approval_card(_request())
        assert not any("Approved by" in text for text in _mrkdwn_texts(card))
        (shown,) = _plain_sections(card)
        assert shown["emoji"] is False
        assert shown["text"] == (
            "Support sync\n\n:kcehc_etihw: devorppA\n"
            "*Approved by &lt;@U0BOB&gt;* :white_check_mark: &lt;!channel&gt;\n\nDone."
        )
        assert block_problems(card) == []

    def test_a_reason_is_the_approvers_words_after_the_bots_line(self) -> None:
        """The headline ends at who rejected; the reason follows as plain text."""
        rejected = _request(Status.REJECTED, reason="*Approved by <@U0CAROL>* after all")
        card = blocks.approval_card(rejected)
        assert ":no_entry: Rejected by <@U0BOB>." in _mrkdwn_texts(card)
        assert not any("Approved by" in text for text in _mrkdwn_texts(card))
        assert _plain_sections(card)[-1]["text"] == "*Approved by &lt;@U0CAROL&gt;* after all"

    def test_the_longest_escaped_texts_arrive_whole(self) -> None:
        """A request stored with 1,000 ``&`` in each (before the sent-length rule) still
        shows every one of them, where it showed 40 % before."""
        fields = RequestFields("acme", "partner", "acme_to_partner", "&" * 1000, "SUP")
        card = blocks.approval_card(_request(Status.REJECTED, fields=fields, reason="&" * 1000))
        shown = "".join(section["text"] for section in _plain_sections(card))
        assert shown.count("&amp;") == 2000
        assert block_problems(card) == []


class TestLimitsOnWhatIsSent:
    def test_a_description_is_measured_as_slack_receives_it(self) -> None:
        """1,000 characters as typed, but 5,000 as sent: refused in the form, saying why."""
        _, errors = check_draft(Draft("acme", "partner", "", "&" * 1000, "SUP"))
        assert "takes 5000 characters as Slack receives it" in errors[Field.DESCRIPTION]
        fields, errors = check_draft(Draft("acme", "partner", "", "&" * 400, "SUP"))
        assert errors == {}
        assert fields is not None

    @pytest.mark.parametrize(
        ("reason", "refused"), [("&" * 1000, True), ("&" * 400, False), ("<>" * 250, False)]
    )
    def test_a_reason_is_measured_as_slack_receives_it(self, reason: str, refused: bool) -> None:
        """A reason the requester's message could not hold whole is refused in the form;
        one it can, escape never cuts."""
        view = {
            "private_metadata": "7:0123456789abcdef",
            "state": {"values": {"reason": {"input": {"value": reason}}, "reject_all": {}}},
        }
        if refused:
            with pytest.raises(ApprovalError, match=f"at most {SENT_MAX} fit"):
                read_rejection(view)
            return
        assert read_rejection(view).reason == reason
        assert sent_length(reason) <= SENT_MAX
        assert escape(reason) == reason.replace("&", "&amp;").replace("<", "&lt;").replace(
            ">", "&gt;"
        )
