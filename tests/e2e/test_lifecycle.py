"""The life cycle after approval, driven by the poller with a controlled clock."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from bot.approvals.model import Status
from handlers.ids import Action, View
from storage import RequestRepository, make_sessionmaker
from tests.e2e.conftest import Clock
from tests.e2e.harness import ALICE, APPROVAL_CHANNEL, BOB, CAROL, MALLORY, Harness


def _code(harness: Harness, name: str = "acme_to_partner") -> str:
    connection = next(c for c in harness.simulator.connections.values() if c["name"] == name)
    return str(connection["invitationCode"])


def _thread_replies(harness: Harness) -> list[str]:
    return [
        c.args["text"] for c in harness.slack.calls_to("chat.postMessage") if "thread_ts" in c.args
    ]


class TestPartnerAcceptance:
    async def test_accepted_invitation_becomes_active_everywhere(self, harness: Harness) -> None:
        """PENDING → ACTIVE: DM, card, thread reply; the code is deleted and its DM edited."""
        request_id = await harness.invited()
        code = _code(harness)
        harness.simulator.accept("acme_to_partner")
        await harness.tick()
        await harness.dm(ALICE, "Your partner accepted")
        card = await harness.card("active")
        assert "The partner accepted" in json.dumps(card.args["blocks"])
        assert any("The partner accepted" in text for text in _thread_replies(harness))
        edited = await harness.slack.wait_for(
            "chat.update", lambda c: c.args["channel"] == "D" + ALICE
        )
        assert code not in json.dumps(edited.args)
        assert "connection is active" in edited.args["text"]
        repository = RequestRepository(make_sessionmaker(harness.runtime.engine))
        assert await repository.invitation_code(request_id) is None
        await harness.click(Action.SHOW_CODE, request_id, ALICE, channel="D" + ALICE)
        notice = await harness.slack.wait_for("views.open")
        assert code not in json.dumps(notice.args)
        assert "Nothing changed" in json.dumps(notice.args)
        status = await harness.command("status")
        assert "acme_to_partner" not in json.dumps(status.body)

    async def test_deactivated_connection_is_shown(self, harness: Harness) -> None:
        """DEACTIVATED is told to the requester, on the card and in its thread."""
        await harness.invited()
        harness.simulator.set_status("acme_to_partner", "DEACTIVATED")
        await harness.tick()
        await harness.card("deactivated")
        assert len(_thread_replies(harness)) == 1
        await harness.dm(ALICE, "Exalate reports the connection")

    async def test_vanished_connection_is_gone_after_three_polls(self, harness: Harness) -> None:
        """A connection missing from one answer may be a hiccup; three in a row mean gone."""
        await harness.invited()
        harness.simulator.delete("acme_to_partner")
        for _ in range(2):
            await harness.tick()
        assert _thread_replies(harness) == []
        await harness.tick()
        await harness.card("gone")
        assert len(_thread_replies(harness)) == 1
        await harness.dm(ALICE, "no longer exists in Exalate")

    async def test_blips_between_good_polls_never_add_up(self, harness: Harness) -> None:
        """Three blips of two empty answers each (a Jira restart, say), each followed by
        a poll that sees the connection: the invitation and its code stay."""
        request_id = await harness.invited()
        exalate_id, connection = next(iter(harness.simulator.connections.items()))
        for _ in range(3):
            del harness.simulator.connections[exalate_id]
            for _ in range(2):
                await harness.tick()
            harness.simulator.connections[exalate_id] = connection
            await harness.tick()
        request = await harness.repository_request(request_id)
        assert (request.status, request.missed_polls) == (Status.INVITED, 0)
        assert _thread_replies(harness) == []
        await harness.click(Action.SHOW_CODE, request_id, ALICE)
        shown = await harness.slack.wait_for("views.open")
        assert str(connection["invitationCode"]) in json.dumps(shown.args["view"])

    async def test_unknown_status_is_shown_verbatim_once(self, harness: Harness) -> None:
        """An unknown status is shown as Exalate spells it, once, and the poll goes on."""
        await harness.invited(remote_short_name="other")
        await harness.invited()
        harness.simulator.set_status("acme_to_partner", "Suspended_By_Admin")
        harness.simulator.accept("acme_to_other")
        await harness.tick()
        await harness.tick()
        replies = _thread_replies(harness)
        assert sum("Suspended_By_Admin" in text for text in replies) == 1
        await harness.card("active")  # the older request, looked at after the odd one
        card = harness.slack.calls_to("chat.update")
        assert any("Suspended_By_Admin" in json.dumps(c.args["blocks"]) for c in card)
        status = await harness.command("status")
        assert "Exalate says Suspended_By_Admin" in json.dumps(status.body)

    async def test_outage_backs_off_and_logs_once(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        """While Exalate fails the poll skips 1, then 3 ticks; the outage is logged once."""
        await harness.invited()
        harness.simulator.fail("connections", 503, times=2)
        with caplog.at_level(logging.INFO, logger="bot.runtime.jobs"):
            polled = [await harness.tick() for _ in range(7)]
        assert polled == [True, False, True, False, False, False, True]
        messages = [
            record.getMessage() for record in caplog.records if record.name == "bot.runtime.jobs"
        ]
        assert sum("exalate_poll_failing" in m for m in messages) == 1
        assert sum("exalate_poll_recovered" in m for m in messages) == 1

    async def test_expiry_runs_during_an_outage(self, harness: Harness, clock: Clock) -> None:
        """Backing off from Exalate does not hold back expiry, which needs no Exalate."""
        await harness.invited()
        assert (await harness.submit_request(remote_short_name="late")).body == {}
        harness.simulator.fail("connections", 503, times=5)
        await harness.tick()
        clock.advance(timedelta(days=8))
        assert not await harness.tick()  # backing off
        await harness.card("expired")


class TestTime:
    async def test_unanswered_request_expires(self, harness: Harness, clock: Clock) -> None:
        """After EXALATE_APPROVAL_TTL the request expires; approving it then changes nothing."""
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        clock.advance(timedelta(days=7) - timedelta(seconds=1))
        await harness.tick()
        assert not harness.slack.calls_to("chat.update")
        clock.advance(timedelta(seconds=1))
        await harness.tick()
        await harness.card("expired")
        expired = await harness.dm(ALICE, "expired")
        assert "Request again" in json.dumps(expired.args["blocks"])
        name = await harness.click(Action.APPROVE, request_id, BOB)
        assert "Nothing changed" in (await harness.private_reply(name)).args["text"]

    async def test_reminders_go_once_each(self, harness: Harness, clock: Clock) -> None:
        """One DM after EXALATE_INVITE_REMIND_AFTER, one thread reply after twice that."""
        await harness.invited()
        clock.advance(timedelta(days=3))
        await harness.tick()
        reminder = await harness.dm(ALICE, "has not accepted")
        assert Action.SHOW_CODE.value in json.dumps(reminder.args["blocks"])
        assert _thread_replies(harness) == []
        clock.advance(timedelta(days=3))
        await harness.tick()
        assert len(_thread_replies(harness)) == 1
        clock.advance(timedelta(days=30))
        await harness.tick()
        assert len(_thread_replies(harness)) == 1
        dms = [
            c
            for c in harness.slack.calls_to("chat.postMessage")
            if "has not accepted" in json.dumps(c.args) and c.args["channel"] == "D" + ALICE
        ]
        assert len(dms) == 1


class TestCancel:
    async def test_requester_cancels_from_the_dm(self, harness: Harness) -> None:
        """The Cancel button in the requester's DM closes the request and its card."""
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        note = await harness.dm(ALICE, "waiting for approval")
        assert Action.CANCEL.value in json.dumps(note.args["blocks"])
        await harness.click(Action.CANCEL, request_id, ALICE, channel="D" + ALICE)
        await harness.card("cancelled")
        name = await harness.click(Action.APPROVE, request_id, BOB)
        assert "Nothing changed" in (await harness.private_reply(name)).args["text"]
        assert harness.simulator.create_calls == []

    async def test_cancel_command_is_for_the_requester(self, harness: Harness) -> None:
        """`/exalate cancel <name>` works for the requester only, and only before a decision."""

        async def cancel(name: str, user: str = ALICE) -> str:
            reply = await harness.command(f"cancel {name}", user=user)
            assert reply.body == {}
            return str((await harness.private_reply(reply.response_url)).args["text"])

        assert (await harness.submit_request()).body == {}
        assert "Only the requester" in await cancel("acme_to_partner", MALLORY)
        assert "Cancelled request #1" in await cancel("ACME_TO_PARTNER")
        assert "Nothing changed" in await cancel("acme_to_partner")
        assert "&lt;!channel&gt;" in await cancel("<!channel>")
        # A NUL, which PostgreSQL refuses in a query, is dropped from the command first.
        assert "Nothing changed" in await cancel("acme_to_partner\x00")
        await harness.card("cancelled")


class TestStatus:
    async def test_status_mine_lists_every_state(self, harness: Harness) -> None:
        """`status mine` shows the asker's requests, decided or not, and nobody else's."""
        await harness.invited()
        assert (await harness.submit_request(remote_short_name="gone")).body == {}
        cancelled = await harness.command("cancel acme_to_gone")
        assert "Cancelled" in (await harness.private_reply(cancelled.response_url)).args["text"]
        assert (await harness.submit_request(remote_short_name="x", user=CAROL)).body == {}
        reply = await harness.command("status mine")
        text = json.dumps(reply.body)
        for expected in ("acme_to_partner", "awaiting the partner", "acme_to_gone", "cancelled"):
            assert expected in text
        assert "acme_to_x" not in text
        assert Action.SHOW_CODE.value in text  # the requester's own pending invitation

    async def test_status_lists_pending_connections_created_outside_slack(
        self, harness: Harness, clock: Clock
    ) -> None:
        """A pending connection made in the console, no request's: listed in its own
        section with its age, from the poller's list (status asks Jira nothing)."""
        await harness.invited()
        harness.simulator.create_in_console("console_made", code="not-ours")
        harness.simulator.create_in_console(
            "console_active", status="ACTIVE", code="not-ours-either"
        )
        await harness.tick()
        clock.advance(timedelta(hours=5))
        await harness.tick()
        reads = len(harness.simulator.requests)
        reply = await harness.command("status", user=MALLORY)
        text = json.dumps(reply.body)
        assert "Pending in Exalate, created outside Slack" in text
        assert "console_made*: seen pending for 5h" in text
        assert "console_active" not in text
        assert text.count("acme_to_partner") == 1  # the bot's own, in the requests list
        assert len(harness.simulator.requests) == reads

    async def test_a_name_clash_leaves_the_other_teams_invitation_listed(
        self, harness: Harness
    ) -> None:
        """A request that failed because the name was taken claims nothing: the other
        team's pending connection of that name is listed as created outside Slack."""
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        harness.simulator.create_in_console("acme_to_partner", code="not-ours")
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("failed")
        await harness.tick()
        text = json.dumps((await harness.command("status")).body)
        assert "Pending in Exalate, created outside Slack* (1)" in text

    async def test_status_of_a_name_tells_its_history(self, harness: Harness) -> None:
        """`status <name>` lists requested, approved, created and accepted, with who."""
        await harness.invited()
        harness.simulator.accept("acme_to_partner")
        await harness.tick()
        for reader in (ALICE, CAROL):  # the requester, an approver (by group)
            text = json.dumps((await harness.command("status acme_to_partner", user=reader)).body)
            for expected in (
                "requested by <@U0ALICE>",
                "approved by <@U0BOB>",
                "connection created by Exalate",
                "exalate reports ACTIVE",
            ):
                assert expected in text

    async def test_anyone_else_gets_one_summary_line(self, harness: Harness) -> None:
        """Who approved and who revealed the code is not everyone's business."""
        await harness.invited()
        await harness.click(Action.SHOW_CODE, 1, ALICE)
        reply = await harness.command("status acme_to_partner", user=MALLORY)
        assert len(reply.body["blocks"]) == 1
        text = json.dumps(reply.body)
        assert "acme_to_partner" in text
        assert "awaiting the partner" in text
        for private in ("U0ALICE", "U0BOB", "revealed"):
            assert private not in text

    async def test_status_stays_within_one_message(self, harness: Harness) -> None:
        """Sixty pending requests are summarised under Slack's 50-block limit."""
        for n in range(60):
            assert (await harness.submit_request(remote_short_name=f"p{n}")).body == {}
        reply = await harness.command("status")
        assert len(reply.body["blocks"]) <= 50
        assert "more" in json.dumps(reply.body["blocks"][-1])


class TestHome:
    async def test_approver_sees_what_waits_for_them(self, harness: Harness) -> None:
        """App Home lists my requests, approvals waiting for me, and pending invitations."""
        await harness.invited()
        assert (await harness.submit_request(remote_short_name="x")).body == {}
        view = (await harness.open_home(BOB)).args["view"]
        text = json.dumps(view)
        assert view["type"] == "home"
        assert "Waiting for your approval" in text
        assert "acme_to_x" in text
        assert "Pending invitations" in text

    async def test_other_people_see_no_approvals_section(self, harness: Harness) -> None:
        """Non-approvers get no approvals section; the requester gets Show code."""
        await harness.invited()
        alice = json.dumps((await harness.open_home(ALICE)).args["view"])
        assert "Waiting for your approval" not in alice
        assert Action.SHOW_CODE.value in alice
        mallory = json.dumps((await harness.open_home(MALLORY)).args["view"])
        assert Action.SHOW_CODE.value not in mallory


class TestAgainAndCode:
    async def test_request_again_reopens_the_form_prefilled(self, harness: Harness) -> None:
        """After a rejection, Request again opens the form with the old answers."""
        assert (await harness.submit_request(description="first try")).body == {}
        request_id = await harness.request_id()
        await harness.click(Action.REJECT, request_id, BOB)
        await harness.slack.wait_for("views.open")
        await harness.submit_reason(request_id, "wrong project")
        note = await harness.dm(ALICE, "was rejected")
        assert Action.REREQUEST.value in json.dumps(note.args["blocks"])
        await harness.click(Action.REREQUEST, request_id, ALICE, channel="D" + ALICE)
        opened = await harness.slack.wait_for(
            "views.open", lambda c: c.args["view"]["callback_id"] == View.REQUEST.value
        )
        blocks = {b.get("block_id"): b for b in opened.args["view"]["blocks"]}
        assert blocks["description"]["element"]["initial_value"] == "first try"
        assert blocks["connection_name"]["element"]["initial_value"] == "acme_to_partner"

    async def test_show_code_is_for_the_requester_and_audited(self, harness: Harness) -> None:
        """The requester sees the code in a modal; others are refused; reveals are audited."""
        request_id = await harness.invited()
        code = _code(harness)
        await harness.click(Action.SHOW_CODE, request_id, MALLORY)
        refused = await harness.slack.wait_for("views.open")
        assert code not in json.dumps(refused.args)
        assert "Only the requester" in json.dumps(refused.args)
        await harness.click(Action.SHOW_CODE, request_id, ALICE, channel="D" + ALICE)
        shown = await harness.slack.wait_for(
            "views.open",
            lambda c: (
                c.args["view"]["callback_id"] == View.CODE.value and code in json.dumps(c.args)
            ),
        )
        assert "private_metadata" not in shown.args["view"]
        history = await harness.command("status acme_to_partner")
        assert "code revealed by <@U0ALICE>" in json.dumps(history.body)
        assert all(
            c.args.get("channel") != APPROVAL_CHANNEL or code not in json.dumps(c.args)
            for c in harness.slack.calls
        )
