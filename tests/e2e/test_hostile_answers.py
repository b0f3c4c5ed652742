"""Hostile and broken answers from Jira and Exalate, end to end: the real client over
loopback HTTP against the simulator's raw answers and issued codes, the bot's real
runtime, and what people then see in the Slack emulator.

- An answer nested too deep, or too large, is an Exalate error: a create settles at
  once, a poll backs off and shows in ``/readyz``; so does any failure of a poll.
- An invitation code from Exalate is checked like a pasted one, shown whole however
  long, and never mentions or links.
- A requester whose request failed reads plain words; Exalate's, with its addresses and
  the bot's settings, stay on the card.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.approvals.model import (
    CodeDelivery,
    ConnectionRequest,
    CreateOutcome,
    RequestFields,
    Status,
)
from bot.exalate.client import MAX_ANSWER_BYTES
from bot.sandbox.simulator_knobs import RawAnswer
from bot.sandbox.slack_emulator.block_kit import block_problems
from handlers.blocks import invitation_dm
from handlers.ids import Action
from tests.e2e.harness import ALICE, APPROVAL_CHANNEL, BOB, CAROL, JIRA_TOKEN, Harness

NAME = "acme_to_partner"
DEEP = b"[" * 100_000 + b"]" * 100_000
HOSTILE_CODE = "<!channel> please log in again: <https://evil.example.test/login|Exalate>"
SSO = "https://sso.corp.example.test/idp/login?target=https://jira.internal.example.test/rest"
PAST_THE_BOUND = b" " * MAX_ANSWER_BYTES
"""Whitespace enough to take a valid answer past the bound: read whole, it would parse."""
CREATED = b'{"id": 154, "name": "acme_to_partner", "status": "PENDING", "invitationCode": "QUJD"}'


async def _approved(harness: Harness) -> int:
    """A request submitted and approved by Bob, its creation done; its id."""
    assert (await harness.submit_request()).body == {}
    await harness.settle()
    request_id = await harness.request_id()
    await harness.click(Action.APPROVE, request_id, BOB)
    await harness.settle()
    return request_id


async def _readyz(harness: Harness) -> tuple[int, dict[str, Any]]:
    async with harness.http.get(harness.url.replace("/slack/events", "/readyz")) as response:
        return response.status, await response.json()


def _dms_to(harness: Harness, user: str) -> str:
    """Everything the bot posted or edited in ``user``'s DM, as one text."""
    return json.dumps(
        [
            call.args
            for call in harness.slack.calls
            if call.method in ("chat.postMessage", "chat.update")
            and call.args.get("channel") == "D" + user
        ]
    )


def _code_in(blocks: list[dict[str, Any]]) -> str:
    """The code as the blocks show it: every code block's text, in order, joined."""
    shown = [
        block["text"]["text"]
        for block in blocks
        if block.get("type") == "section" and block["text"]["text"].startswith("```")
    ]
    assert all(len(text) <= 3000 for text in shown)
    return "".join(text.removeprefix("```").removesuffix("```") for text in shown)


class TestDeepOrHugeAnswers:
    @pytest.mark.parametrize(
        "answer",
        [
            RawAnswer(DEEP, status=201),
            RawAnswer(CREATED + PAST_THE_BOUND, status=201),
            RawAnswer(b"<html>Welcome</html>", status=200, content_type="text/html"),
        ],
        ids=["deep", "huge", "html"],
    )
    async def test_an_unreadable_answer_to_create_settles_the_request_at_once(
        self, harness: Harness, answer: RawAnswer
    ) -> None:
        """Failed as uncertain the moment the answer comes, not left initiating for the
        poller; the connection was made, so Retry finds it and asks for its code."""
        harness.simulator.answer_raw("create", answer)
        request_id = await _approved(harness)

        request = await harness.repository_request(request_id)
        assert request.status is Status.FAILED
        assert request.last_attempt is CreateOutcome.UNCERTAIN
        card = await harness.card("failed")
        assert "Jira" in json.dumps(card.args["blocks"])

        await harness.click(Action.RETRY, request_id, CAROL)
        await harness.settle()
        adopted = await harness.repository_request(request_id)
        assert adopted.code_delivery is CodeDelivery.NEVER_RECEIVED
        assert len(harness.simulator.create_calls) == 1

    async def test_a_deep_connection_list_backs_off_and_shows_in_readyz(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An Exalate error like any outage: skipped ticks, 503, logged once, no ERROR."""
        await harness.invited()
        harness.simulator.answer_raw("connections", RawAnswer(DEEP), times=2)
        with caplog.at_level(logging.INFO, logger="bot.runtime.jobs"):
            assert await harness.tick()
            code, ready = await _readyz(harness)
            polled = [await harness.tick() for _ in range(6)]

        assert (code, ready["sites"]["default"]["last_error"]) == (503, "ExalateServerError")
        assert polled == [False, True, False, False, False, True]
        messages = [r.getMessage() for r in caplog.records if r.name == "bot.runtime.jobs"]
        assert sum("exalate_poll_failing" in m for m in messages) == 1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert (await _readyz(harness))[0] == 200

    async def test_a_huge_connection_list_is_not_read_past_the_bound(
        self, harness: Harness
    ) -> None:
        assert await harness.tick()  # after the start's own reads
        listing = b'{"total": 0, "results": []}' + PAST_THE_BOUND
        harness.simulator.answer_raw("connections", RawAnswer(listing), times=2)
        await harness.tick()

        code, ready = await _readyz(harness)
        assert (code, ready["sites"]["default"]["reachable"]) == (503, False)

    async def test_an_unforeseen_failure_of_a_poll_backs_off_logged_once_with_traceback(
        self, harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Whatever a poll meets counts as an outage of its site: it backs off, /readyz
        says so, and one ERROR line carries the traceback."""

        async def broken() -> None:
            raise RuntimeError("the bot's own fault")

        site = harness.site()
        monkeypatch.setattr(site.exalate, "connection_list", broken)
        with caplog.at_level(logging.INFO, logger="bot.runtime.jobs"):
            polled = [await harness.tick() for _ in range(4)]
            code, ready = await _readyz(harness)
            monkeypatch.undo()
            polled += [await harness.tick() for _ in range(4)]

        assert polled == [True, False, True, False, False, False, True, True]
        assert (code, ready["sites"]["default"]["last_error"]) == (503, "RuntimeError")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in errors] == [
            "poll_failed site=default kind=RuntimeError; backing off"
        ]
        assert errors[0].exc_info is not None
        assert any("exalate_poll_recovered" in r.getMessage() for r in caplog.records)
        assert (await _readyz(harness))[0] == 200


class TestCodesFromExalate:
    async def test_a_hostile_code_reaches_nobody_and_the_card_asks_for_the_consoles(
        self, harness: Harness
    ) -> None:
        harness.simulator.issue_code(HOSTILE_CODE)
        request_id = await _approved(harness)

        card = await harness.card("invited")
        text = json.dumps(card.args["blocks"])
        assert "the invitation code in its answer is not one" in text
        assert card.args["blocks"][-1]["elements"][0]["action_id"] == Action.PASTE_CODE.value
        await harness.dm(ALICE, "did not reach me")
        everything = json.dumps([call.args for call in harness.slack.calls])
        assert "<!channel>" not in everything
        assert "evil.example.test" not in everything

        assert (await harness.paste(request_id, "Q09OU09MRS1DT0RF", BOB)).body == {}
        await harness.dm(ALICE, "Q09OU09MRS1DT0RF")

    async def test_a_long_code_is_shown_whole_in_the_dm_and_in_show_code(
        self, harness: Harness
    ) -> None:
        code = "eyJjb25uZWN0aW9uIjoi" * 250  # 5,000 characters
        harness.simulator.issue_code(code)
        request_id = await _approved(harness)

        dm = await harness.dm(ALICE, code[:100])
        assert _code_in(dm.args["blocks"]) == code
        await harness.click(Action.SHOW_CODE, request_id, ALICE)
        shown = await harness.slack.wait_for("views.open")
        assert _code_in(shown.args["view"]["blocks"]) == code


class TestDrawingACode:
    """A code stored before codes were checked is drawn inert all the same."""

    def test_a_stored_code_cannot_mention_or_link_and_is_never_cut(self) -> None:
        request = ConnectionRequest(
            id=7,
            status=Status.INVITED,
            version=3,
            fields=RequestFields("acme", "partner", NAME, "", "SUP"),
            requester=ALICE,
            created_at=datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
            updated_at=datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
        )
        code = HOSTILE_CODE + "&" * 3000

        _, body = invitation_dm(request, code)

        assert block_problems(body) == []
        drawn = _code_in(body)
        assert "<" not in drawn
        assert drawn == code.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class TestWhatTheRequesterReads:
    """Each way a create can fail: the card has Exalate's words, the requester's DM has
    none of them: no address, no login page, no setting, no status."""

    FORBIDDEN = ("http", "HTTP", "JIRA_TOKEN", "Jira", "sso", "rest/", "internal", "token")

    @pytest.mark.parametrize(
        ("status", "message"),
        [
            (401, "Token expired; see https://jira.internal.example.test/secure/ViewProfile"),
            (403, "User exalate-bot is not an Exalate admin on jira.internal.example.test"),
            (500, "NullPointerException at http://jira-node-2.internal.example.test:8080/rest"),
            (503, "Jira is starting at jira.internal.example.test"),
        ],
    )
    async def test_a_refused_or_failed_create(
        self, harness: Harness, status: int, message: str
    ) -> None:
        harness.simulator.fail("create", status, message=message)
        await _approved(harness)

        card = await harness.card("failed")
        assert message in json.dumps(card.args["blocks"])
        await harness.dm(ALICE, "the approvers see its answer on the card")
        self._plain(harness)

    async def test_a_create_redirected_to_a_login_page(self, harness: Harness) -> None:
        harness.simulator.answer_raw(
            "create",
            RawAnswer(
                b"<html>Log in</html>",
                status=302,
                content_type="text/html",
                headers={"Location": SSO},
            ),
        )
        await _approved(harness)

        card = await harness.card("failed")
        assert "sso.corp.example.test" in json.dumps(card.args["blocks"])
        await harness.dm(ALICE, "the approvers see its answer on the card")
        self._plain(harness)

    async def test_a_project_gone_since_the_request(self, harness: Harness) -> None:
        assert (await harness.submit_request()).body == {}
        await harness.settle()
        request_id = await harness.request_id()
        harness.simulator.set_project_count(0)
        await harness.click(Action.APPROVE, request_id, BOB)

        card = await harness.card("failed")
        assert "The incoming project SUP is gone" in json.dumps(card.args["blocks"])
        await harness.dm(ALICE, "the approvers see its answer on the card")
        self._plain(harness)

    async def test_a_list_that_cannot_be_read(self, harness: Harness) -> None:
        assert (await harness.submit_request()).body == {}
        await harness.settle()
        request_id = await harness.request_id()
        harness.simulator.fail("connections", 502, message="Bad gateway at proxy.internal")
        await harness.click(Action.APPROVE, request_id, BOB)

        card = await harness.card("failed")
        assert "proxy.internal" in json.dumps(card.args["blocks"])
        await harness.dm(ALICE, "the approvers see its answer on the card")
        self._plain(harness)

    def _plain(self, harness: Harness) -> None:
        said = _dms_to(harness, ALICE)
        assert "creating the connection failed" in said
        assert not [word for word in self.FORBIDDEN if word in said]
        assert f"<#{APPROVAL_CHANNEL}>" in said
        assert JIRA_TOKEN not in said
