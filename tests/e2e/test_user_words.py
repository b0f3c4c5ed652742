"""People's words on the bot's messages, against the running bot: a description cannot
dress up as the card, and a reason reaches the requester whole or is refused in the
form, never cut on the way."""

from __future__ import annotations

import json
from typing import Any

from handlers.ids import Action
from tests.e2e.harness import ALICE, APPROVAL_CHANNEL, BOB, Harness

DRESSED_UP = (
    "Support sync\n\n\n\n \u200b \n"
    "\u202e:kcehc_etihw: devorppA\u202c\n"
    "*Approved by <@U0BOB>* :white_check_mark: <!channel>\n\n\nDone."
)


def _texts(node: Any, kind: str) -> list[str]:
    """Every text of ``kind`` (mrkdwn, plain_text) in a message's blocks."""
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == kind else []
        return own + [text for value in node.values() for text in _texts(value, kind)]
    if isinstance(node, list):
        return [text for value in node for text in _texts(value, kind)]
    return []


async def _card_blocks(harness: Harness) -> list[Any]:
    await harness.settle()
    post = await harness.slack.wait_for(
        "chat.postMessage", lambda call: call.args.get("channel") == APPROVAL_CHANNEL
    )
    return list(post.args["blocks"])


async def _rejecting(harness: Harness) -> int:
    """A request on its card, and Bob's Reject form open for it."""
    assert (await harness.submit_request()).body == {}
    await harness.settle()
    request_id = await harness.request_id()
    await harness.click(Action.REJECT, request_id, BOB)
    await harness.slack.wait_for("views.open")
    return request_id


class TestDescription:
    async def test_a_description_cannot_dress_up_as_the_card(self, harness: Harness) -> None:
        """The finding: a bold "Approved by", emoji, blank lines and a right-to-left
        override rendered on the card as if the bot had said them. Now the card's mrkdwn
        holds none of it; the words are plain text under the requester's label."""
        assert (await harness.submit_request(description=DRESSED_UP)).body == {}
        card = await _card_blocks(harness)
        assert not any("Approved by" in text for text in _texts(card, "mrkdwn"))
        assert any("as the requester wrote it" in text for text in _texts(card, "mrkdwn"))
        assert (
            "Support sync\n\n:kcehc_etihw: devorppA\n"
            "*Approved by &lt;@U0BOB&gt;* :white_check_mark: &lt;!channel&gt;\n\nDone."
        ) in _texts(card, "plain_text")

    async def test_a_description_too_long_as_sent_is_refused_in_the_form(
        self, harness: Harness
    ) -> None:
        """1,000 characters as typed, 5,000 as Slack receives them: refused, saying why,
        instead of reaching the approvers cut."""
        reply = await harness.submit_request(description="&" * 1000)
        assert "takes 5000 characters as Slack receives it" in reply.body["errors"]["description"]


class TestReason:
    async def test_a_reason_dressed_as_the_bot_reads_as_the_approver_s_words(
        self, harness: Harness
    ) -> None:
        """In the requester's DM too the reason is plain text: "*Approved by Bob*" and a
        mention render as typed, never as the bot's bold or a ping."""
        request_id = await _rejecting(harness)
        reason = "*Approved by Bob* <!channel>\n\n\n:tada: \u202eevil"
        assert (await harness.submit_reason(request_id, reason)).body == {}
        dm = await harness.dm(ALICE, "was rejected by")
        plain = "".join(_texts(dm.args["blocks"], "plain_text"))
        assert "*Approved by Bob* &lt;!channel&gt;\n\n:tada: evil" in plain
        assert "Approved by Bob" not in "".join(_texts(dm.args["blocks"], "mrkdwn"))

    async def test_a_reason_reaches_the_requester_whole_or_is_refused(
        self, harness: Harness
    ) -> None:
        """The finding: 1,000 ``&`` reached the requester cut to 40 %. Now such a reason
        is refused in the form, and one that fits arrives whole, in the DM and on the
        card, where it follows the bot's line as the approver's words."""
        request_id = await _rejecting(harness)
        refused = await harness.submit_reason(request_id, "&" * 1000)
        assert "at most 2000 fit" in refused.body["errors"]["reason"]
        assert (await harness.submit_reason(request_id, "&" * 400)).body == {}
        dm = await harness.dm(ALICE, "was rejected by")
        assert json.dumps(dm.args["blocks"]).count("&amp;") == 400
        assert "".join(_texts(dm.args["blocks"], "plain_text")).count("&amp;") == 400
        card = await harness.card("rejected")
        assert "".join(_texts(card.args["blocks"], "plain_text")).count("&amp;") == 400
        assert ":no_entry: Rejected by <@U0BOB>." in _texts(card.args["blocks"], "mrkdwn")
