"""The core flow end to end: from ``/exalate connect`` to a private invitation code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bot.approvals.model import Status
from bot.sandbox.exalate_simulator import Simulator
from handlers.ids import Action, View
from storage import RequestRepository
from tests.e2e.conftest import Clock
from tests.e2e.harness import ALICE, APPROVAL_CHANNEL, BOB, CAROL, MALLORY, Harness


@pytest.fixture(name="existing")
def _existing(simulator: Simulator) -> None:
    """A connection that was in Exalate before the bot started."""
    simulator.connections[999] = {
        "id": 999,
        "name": "existing",
        "status": "ACTIVE",
        "invitationCode": "c",
    }


@contextlib.contextmanager
def _counted_reads(harness: Harness) -> Iterator[list[str]]:
    """The pages of requests read while inside (each read counts its rows once)."""
    counts: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.lstrip().upper().startswith("SELECT COUNT(*)"):
            counts.append(statement)

    engine = harness.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def _submitted_request(harness: Harness) -> int:
    """Submit a valid request and return its id, once its card is up."""
    reply = await harness.submit_request()
    assert reply == type(reply)(200, {})
    post = await harness.slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == APPROVAL_CHANNEL
    )
    header = post.args["blocks"][0]["text"]["text"]
    return int(header.rsplit("#", 1)[1])


class TestConnectCommand:
    async def test_opens_a_prefilled_modal(self, harness: Harness) -> None:
        """`connect remote=… project=…` acks empty and opens the form with those values."""
        fields = harness.command_fields("connect remote=partner project=SUP")
        reply = await harness.post_form(fields)
        assert reply.status == 200
        opened = await harness.slack.wait_for("views.open")
        assert opened.args["trigger_id"] == fields["trigger_id"]
        blocks = {block.get("block_id"): block for block in opened.args["view"]["blocks"]}
        assert blocks["local_short_name"]["element"]["initial_value"] == "acme"
        assert blocks["remote_short_name"]["element"]["initial_value"] == "partner"
        assert blocks["project_key"]["element"]["initial_option"]["value"] == "SUP"
        assert blocks["description"]["element"]["max_length"] == 1000

    async def test_small_project_list_is_a_static_select(self, harness: Harness) -> None:
        """With Jira's list cached and at most 100 projects, the select holds them all."""
        await harness.site().projects.get(wait=2)
        await harness.command("connect")
        opened = await harness.slack.wait_for("views.open")
        project = opened.args["view"]["blocks"][-1]["element"]
        assert project["type"] == "static_select"
        assert [option["value"] for option in project["options"]][:1] == ["SUP"]

    async def test_large_project_list_uses_type_ahead(self, harness: Harness) -> None:
        """Past 100 projects the select loads options, filtered, at most 100."""
        harness.simulator.set_project_count(150)
        harness.site().projects.invalidate()
        await harness.site().projects.get(wait=2)
        await harness.command("connect")
        opened = await harness.slack.wait_for("views.open")
        assert opened.args["view"]["blocks"][-1]["element"]["type"] == "external_select"
        everything = await harness.suggest("")
        assert len(everything.body["options"]) == 100
        narrowed = await harness.suggest("P014")
        assert {o["value"] for o in narrowed.body["options"]} == {
            f"P{n:04d}" for n in range(140, 150)
        }

    @pytest.mark.parametrize("allowed_projects", ["SUP,D*"])
    async def test_only_allowed_projects_are_offered_and_accepted(self, harness: Harness) -> None:
        """EXALATE_PROJECTS=SUP,D*: the form and the type-ahead offer those only, and a
        submission naming another project is refused without asking Jira about it."""
        await harness.site().projects.get(wait=2)
        await harness.command("connect")
        opened = await harness.slack.wait_for("views.open")
        offered = [o["value"] for o in opened.args["view"]["blocks"][-1]["element"]["options"]]
        assert offered
        assert all(key == "SUP" or key.startswith("D") for key in offered)
        suggested = [o["value"] for o in (await harness.suggest("")).body["options"]]
        assert sorted(suggested) == sorted(offered)
        refused = await harness.submit_request(project_key="OPS")
        assert "OPS is not open for incoming sync" in refused.body["errors"]["project_key"]
        assert "/rest/api/2/project/OPS" not in [r.path for r in harness.simulator.requests]
        assert (await harness.submit_request(remote_short_name="x")).body == {}  # SUP

    async def test_unmatched_query_reads_an_older_list_again(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A query matching nothing in a list younger than 10 s is answered from it; in
        an older list, Jira's list is read again and the new project is offered."""
        harness.simulator.set_project_count(150)
        harness.site().projects.invalidate()
        await harness.site().projects.get(wait=2)
        harness.simulator.projects.append(("NEWPRJ", "Created a minute ago"))
        assert (await harness.suggest("NEWPRJ")).body["options"] == []
        monkeypatch.setattr("handlers.options.UNMATCHED_MAX_AGE", 0.0)
        offered = (await harness.suggest("NEWPRJ")).body["options"]
        assert [option["value"] for option in offered] == ["NEWPRJ"]

    async def test_unknown_prefill_key_gets_usage(self, harness: Harness) -> None:
        """A misspelt option is named, with the usage, and no modal opens."""
        reply = await harness.command("connect remot=partner")
        assert "remot" in reply.body["text"]
        assert "Usage" in reply.body["text"]
        assert harness.slack.calls_to("views.open") == []


class TestSubmission:
    async def test_errors_are_shown_inline_per_field(self, harness: Harness) -> None:
        """Bad fields come back as `errors` keyed by input block; nothing reaches approvers."""
        reply = await harness.submit_request(
            local_short_name="1acme", project_key="NOPE", description="x" * 1001
        )
        assert reply.status == 200
        assert reply.body["response_action"] == "errors"
        assert set(reply.body["errors"]) == {"local_short_name", "description"}
        reply = await harness.submit_request(project_key="NOPE")
        assert reply.body["errors"] == {"project_key": "Jira has no project with the key NOPE."}
        assert harness.slack.calls_to("chat.postMessage") == []

    async def test_name_existing_in_exalate_is_refused(
        self, existing: None, harness: Harness
    ) -> None:
        """A connection name Exalate already has, in any case, is an error on the name."""
        reply = await harness.submit_request(connection_name="EXISTING")
        assert reply.body["errors"] == {
            "connection_name": "Exalate already has a connection named EXISTING; "
            "choose another name."
        }

    async def test_a_project_newer_than_the_cached_list_is_accepted(self, harness: Harness) -> None:
        """A key the cached list lacks is asked of Jira before it is refused."""
        await harness.site().projects.get(wait=2)
        harness.simulator.projects.append(("NEWPRJ", "Created a minute ago"))
        assert (await harness.submit_request(project_key="NEWPRJ")).body == {}
        asked = [r.path for r in harness.simulator.requests]
        assert "/rest/api/2/project/NEWPRJ" in asked
        refused = await harness.submit_request(remote_short_name="x", project_key="NOPE")
        assert refused.body["errors"] == {"project_key": "Jira has no project with the key NOPE."}

    async def test_a_connection_made_just_before_the_submission_is_seen(
        self, harness: Harness
    ) -> None:
        """A connection created in the console a moment before the form is submitted is
        in the list the name is checked against: refused in the form, not at approval."""
        assert (await harness.submit_request(remote_short_name="first")).body == {}
        harness.simulator.create_in_console("acme_to_partner", code="someone-elses-code")
        reply = await harness.submit_request()
        assert "Exalate already has a connection named acme_to_partner" in json.dumps(reply.body)

    async def test_submissions_arriving_together_share_list_reads(self, harness: Harness) -> None:
        """Twenty submissions at once read Exalate's list a few times, not twenty."""
        replies = await asyncio.gather(
            *(harness.submit_request(remote_short_name=f"p{n}") for n in range(20))
        )
        assert all(reply.body == {} for reply in replies)
        reads = [r for r in harness.simulator.requests if r.path.endswith("/connections")]
        assert 1 <= len(reads) <= 3  # the start-up warm-up, and one shared by the burst

    async def test_a_name_taken_after_the_form_is_never_claimed(self, harness: Harness) -> None:
        """Alice's request passed the form's check; then a connection of that name was
        made in the console. Bob approves: create is not called, the request fails saying
        the connection is not this request's, Alice can ask again under another name.
        Carol's Retry re-checks, explains and changes nothing; the other team's
        connection being accepted tells Alice nothing."""
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        harness.simulator.create_in_console("acme_to_partner", code="someone-elses-code")
        await harness.click(Action.APPROVE, request_id, BOB)
        card = await harness.card("failed")
        taken = "Exalate already has a connection named acme_to_partner that this request"
        assert taken in json.dumps(card.args["blocks"])
        assert harness.simulator.create_calls == []
        dm = await harness.dm(ALICE, "Ask again under another name")
        assert Action.REREQUEST.value in json.dumps(dm.args["blocks"])
        await harness.click(Action.REREQUEST, request_id, ALICE, channel="D" + ALICE)
        form = await harness.slack.wait_for(
            "views.open", lambda c: c.args["view"]["callback_id"] == View.REQUEST.value
        )
        assert "Support tickets" in json.dumps(form.args["view"])  # pre-filled
        failed = await harness.repository_request(request_id)

        retried = await harness.click(Action.RETRY, request_id, CAROL)
        assert taken in (await harness.private_reply(retried)).args["text"]
        harness.simulator.accept("acme_to_partner")
        await harness.tick()
        await harness.settle()
        request = await harness.repository_request(request_id)
        assert (request.status, request.version) == (Status.FAILED, failed.version)
        assert request.exalate_connection_id is None
        assert not [c for c in harness.slack.calls if "accepted" in json.dumps(c.args)]

        await harness.click(Action.REJECT, request_id, BOB)  # frees the name
        await harness.slack.wait_for(
            "views.open", lambda c: c.args["view"]["callback_id"] == View.REJECT.value
        )
        assert (await harness.submit_reason(request_id, "Use another name")).body == {}
        await harness.card("rejected")

    @pytest.mark.parametrize("initiation", ["assisted"])
    async def test_assisted_mode_never_claims_a_name_taken_before_approval(
        self, harness: Harness
    ) -> None:
        """In assisted mode too the name is checked before the approver is sent to the
        console: another team's connection of that name fails the request, and its
        acceptance tells Alice nothing."""
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        harness.simulator.create_in_console(
            "acme_to_partner", status="ACTIVE", code="someone-elses-code"
        )
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("failed")
        await harness.tick()
        await harness.settle()
        request = await harness.repository_request(request_id)
        assert (request.status, request.exalate_connection_id) == (Status.FAILED, None)
        assert not [c for c in harness.slack.calls if "accepted" in json.dumps(c.args)]

    @pytest.mark.parametrize(
        ("status", "adopted"),
        [(422, False), (403, False), (500, True), (502, True)],
    )
    async def test_only_an_uncertain_outcome_lets_a_retry_adopt(
        self, harness: Harness, status: int, adopted: bool
    ) -> None:
        """A 4xx proves nothing was created, so a connection of the name that shows up
        later is someone else's; after a 5xx it may be the one this attempt made."""
        harness.simulator.fail("create", status)
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("failed")
        made = harness.simulator.create_in_console("acme_to_partner", code="c")
        await harness.click(Action.RETRY, request_id, CAROL)
        await harness.settle()
        request = await harness.repository_request(request_id)
        assert (request.exalate_connection_id == str(made)) is adopted
        assert request.status is (Status.INVITED if adopted else Status.FAILED)

    async def test_a_409_is_a_refusal_never_adopted(self, harness: Harness) -> None:
        """Exalate answers 409: nothing of ours exists. When the name then shows up in the
        list, a Retry explains instead of adopting it."""
        harness.simulator.fail("create", 409)
        assert (await harness.submit_request()).body == {}
        request_id = await harness.request_id()
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("failed")
        harness.simulator.create_in_console("acme_to_partner", code="someone-elses-code")
        retried = await harness.click(Action.RETRY, request_id, CAROL)
        assert "did not create" in (await harness.private_reply(retried)).args["text"]
        request = await harness.repository_request(request_id)
        assert (request.status, request.exalate_connection_id) == (Status.FAILED, None)

    async def test_concurrent_submissions_get_one_card_each(self, harness: Harness) -> None:
        """Twenty requests submitted at once: twenty cards, none posted twice."""
        replies = await asyncio.gather(
            *(harness.submit_request(remote_short_name=f"p{n}") for n in range(20))
        )
        assert all(reply.body == {} for reply in replies)
        await harness.settle()
        cards = [
            c.args["blocks"][0]["text"]["text"]
            for c in harness.slack.calls_to("chat.postMessage")
            if c.args.get("channel") == APPROVAL_CHANNEL
        ]
        assert sorted(cards) == sorted(f"Exalate connection request #{n}" for n in range(1, 21))

    async def test_name_of_another_open_request_is_refused(self, harness: Harness) -> None:
        """Two open requests cannot claim one connection name."""
        assert (await harness.submit_request()).body == {}
        reply = await harness.submit_request(user=CAROL)
        assert "Another open request already uses" in reply.body["errors"]["connection_name"]

    async def test_valid_request_posts_a_card_and_tells_the_requester(
        self, harness: Harness
    ) -> None:
        """The card names the requester and every field; the requester hears it is waiting."""
        request_id = await _submitted_request(harness)
        card = harness.slack.calls_to("chat.postMessage")[0]
        text = json.dumps(card.args["blocks"])
        for expected in (
            f"<@{ALICE}>",
            "acme_to_partner",
            "acme",
            "partner",
            "SUP",
            "Support tickets",
            "Approve",
            "Reject",
        ):
            assert expected in text
        approve = card.args["blocks"][-1]["elements"][0]
        assert approve["value"].startswith(f"{request_id}:")  # the id and a fingerprint
        assert "confirm" in approve
        await harness.dm(ALICE, "waiting for approval")


class TestApproval:
    async def test_approve_creates_the_connection_and_dms_the_code(self, harness: Harness) -> None:
        """Approval calls Exalate once with the wizard's fields; the code goes to a DM."""
        request_id = await _submitted_request(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        card = await harness.card("invited")
        assert "Approved by <@U0BOB>" in json.dumps(card.args["blocks"])
        assert all(b["type"] != "actions" for b in card.args["blocks"])
        assert harness.simulator.create_calls == [
            {
                "connectionType": "PRIVATE",
                "configurationMode": "SCRIPT",
                "localInstanceShortName": "acme",
                "remoteInstanceShortName": "partner",
                "name": "acme_to_partner",
                "description": "Support tickets",
                "incomingProjectKey": "SUP",
            }
        ]
        code = next(iter(harness.simulator.connections.values()))["invitationCode"]
        delivered = await harness.dm(ALICE, code)
        assert "Accept invitation" in json.dumps(delivered.args["blocks"])

    async def test_approving_shows_progress_before_the_outcome(self, harness: Harness) -> None:
        """The card first says who approved, while Exalate creates the connection, then
        what came of it."""
        request_id = await _submitted_request(harness)
        harness.simulator.hold_creates()
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("initiating")
        harness.simulator.release_creates()
        await harness.card("invited")
        updates = [c.args["text"] for c in harness.slack.calls_to("chat.update")]
        assert [u.rsplit(": ", 1)[1] for u in updates] == ["initiating", "invited"]

    async def test_group_member_may_approve(self, harness: Harness) -> None:
        """A member of an approver user group (resolved with usergroups.users.list) approves."""
        request_id = await _submitted_request(harness)
        await harness.click(Action.APPROVE, request_id, CAROL)
        await harness.card("invited")
        assert harness.slack.calls_to("usergroups.users.list")[0].args["usergroup"] == "S0ADMINS"

    async def test_outsider_click_changes_nothing_and_is_told_why(self, harness: Harness) -> None:
        """A non-approver's click is explained privately; no Exalate call happens."""
        request_id = await _submitted_request(harness)
        name = await harness.click(Action.APPROVE, request_id, MALLORY)
        reply = await harness.private_reply(name)
        assert reply.args["response_type"] == "ephemeral"
        assert reply.args["replace_original"] is False
        assert "Only approvers" in reply.args["text"]
        assert harness.simulator.create_calls == []
        status = await harness.command("status")
        assert "awaiting approval" in json.dumps(status.body)

    async def test_requester_may_not_approve_their_own_request(self, harness: Harness) -> None:
        """Even an approver cannot approve a request they made."""
        reply = await harness.submit_request(user=BOB)
        assert reply.body == {}
        post = await harness.slack.wait_for("chat.postMessage")
        request_id = int(post.args["blocks"][0]["text"]["text"].rsplit("#", 1)[1])
        name = await harness.click(Action.APPROVE, request_id, BOB)
        assert "another approver" in (await harness.private_reply(name)).args["text"]
        assert harness.simulator.create_calls == []

    async def test_double_click_creates_one_connection(self, harness: Harness) -> None:
        """Two approvers clicking at once: one Exalate call; the other is told it moved on."""
        request_id = await _submitted_request(harness)
        harness.simulator.create_latency = 0.05
        names = await asyncio.gather(
            harness.click(Action.APPROVE, request_id, BOB),
            harness.click(Action.APPROVE, request_id, CAROL),
            harness.click(Action.APPROVE, request_id, BOB),
        )
        await harness.card("invited")
        await harness.settle()
        told = [c for n in names for c in harness.slack.calls_to(f"response_url:{n}")]
        assert len(harness.simulator.create_calls) == 1
        assert len(told) == 2
        assert all("Nothing changed" in call.args["text"] for call in told)

    async def test_forged_request_id_is_explained(self, harness: Harness) -> None:
        """A button value naming no request tells the clicker so."""
        name = await harness.click(Action.APPROVE, "4242:0123456789abcdef", BOB)
        assert "does not exist" in (await harness.private_reply(name)).args["text"]


class TestFailure:
    async def test_server_error_offers_retry_and_retry_succeeds(self, harness: Harness) -> None:
        """A 500 leaves the request failed with Retry; the retry delivers the code."""
        harness.simulator.fail("create", 500)
        request_id = await _submitted_request(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        card = await harness.card("failed")
        actions = card.args["blocks"][-1]
        assert actions["elements"][0]["action_id"] == Action.RETRY.value
        await harness.dm(ALICE, "the approvers can retry")
        await harness.click(Action.RETRY, request_id, CAROL)
        await harness.card("invited")
        code = next(iter(harness.simulator.connections.values()))["invitationCode"]
        await harness.dm(ALICE, code)
        assert len(harness.simulator.create_calls) == 2

    async def test_missing_endpoint_falls_back_to_the_console(self, harness: Harness) -> None:
        """A 404 on create: the approver gets the wizard's values and a Paste button; the
        pasted code reaches the requester, and the poller follows the connection."""
        harness.simulator.fail("create", 404)
        request_id = await _submitted_request(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        card = await harness.card("assisted")
        assert card.args["blocks"][-1]["elements"][0]["action_id"] == Action.PASTE_CODE.value
        guide = await harness.dm(BOB, "Initiate connection")
        guide_text = json.dumps(guide.args["blocks"])
        for value in ("acme", "partner", "acme_to_partner", "Support tickets", "SUP"):
            assert value in guide_text
        # The approver creates it in the console, copies the code, and pastes it.
        harness.simulator.create_in_console("acme_to_partner", code="CODE-7")
        assert (await harness.paste(request_id, "CODE-7", BOB)).body == {}
        await harness.dm(ALICE, "CODE-7")
        await harness.card("invited")
        harness.simulator.accept("acme_to_partner")
        await harness.tick()
        await harness.card("active")

    @pytest.mark.parametrize("create_timeout", [0.1])
    async def test_timeout_is_a_failure_with_retry(self, harness: Harness) -> None:
        """No answer within EXALATE_CREATE_TIMEOUT fails the request, keeping it retryable."""
        harness.simulator.create_latency = 1.0
        request_id = await _submitted_request(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        card = await harness.card("failed")
        assert card.args["blocks"][-1]["elements"][0]["action_id"] == Action.RETRY.value
        await harness.dm(ALICE, "failed")

    async def test_outsider_cannot_retry(self, harness: Harness) -> None:
        """Retry is for approvers only."""
        harness.simulator.fail("create", 503)
        request_id = await _submitted_request(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("failed")
        name = await harness.click(Action.RETRY, request_id, MALLORY)
        assert "Only approvers" in (await harness.private_reply(name)).args["text"]
        assert len(harness.simulator.create_calls) == 1


class TestRejection:
    async def test_reject_asks_for_a_reason_and_tells_the_requester(self, harness: Harness) -> None:
        """Reject opens a reason modal; the card shows the decision; the requester gets it."""
        request_id = await _submitted_request(harness)
        await harness.click(Action.REJECT, request_id, BOB)
        modal = await harness.slack.wait_for("views.open")
        assert modal.args["view"]["private_metadata"].startswith(f"{request_id}:")
        empty = await harness.submit_reason(request_id, "   ")
        assert empty.body["response_action"] == "errors"
        nul = await harness.submit_reason(request_id, "Use the\x00 existing one")
        assert "NUL character" in json.dumps(nul.body["errors"])
        done = await harness.submit_reason(request_id, "Use the existing <!channel> link")
        assert done.body == {}
        card = await harness.card("rejected")
        text = json.dumps(card.args["blocks"])
        assert "Rejected by <@U0BOB>" in text
        assert "<!channel>" not in text
        assert "&lt;!channel&gt;" in text
        await harness.dm(ALICE, "was rejected by")
        assert harness.simulator.create_calls == []

    async def test_a_reason_form_without_the_cards_fingerprint_is_refused(
        self, harness: Harness
    ) -> None:
        """A submission naming only the request id (no modal of the bot's carries that)
        is refused like a forged button value, and changes nothing."""
        request_id = await _submitted_request(harness)
        reply = await harness.submit_reason(request_id, "forged")  # no modal was opened
        assert reply.body["errors"] == {"reason": "This form does not belong to any request."}
        assert (await harness.repository_request(request_id)).status is Status.PENDING_APPROVAL

    async def test_outsider_cannot_open_the_reject_modal(self, harness: Harness) -> None:
        """A non-approver's Reject click is explained; no modal opens."""
        request_id = await _submitted_request(harness)
        name = await harness.click(Action.REJECT, request_id, MALLORY)
        assert "Only approvers" in (await harness.private_reply(name)).args["text"]
        assert harness.slack.calls_to("views.open") == []

    async def test_rejected_request_cannot_be_approved(self, harness: Harness) -> None:
        """After a rejection, a stale Approve click changes nothing."""
        request_id = await _submitted_request(harness)
        await harness.click(Action.REJECT, request_id, BOB)
        await harness.slack.wait_for("views.open")
        await harness.submit_reason(request_id, "no")
        await harness.card("rejected")
        name = await harness.click(Action.APPROVE, request_id, CAROL)
        assert "Nothing changed" in (await harness.private_reply(name)).args["text"]
        assert harness.simulator.create_calls == []


class TestStatusAndHelp:
    async def test_status_asked_together_is_read_once_and_never_misses_a_change(
        self, harness: Harness
    ) -> None:
        """Twenty people asking at once share one read of the open requests; a change
        this process made shows in the very next answer."""
        request_id = await _submitted_request(harness)
        await harness.settle()
        with _counted_reads(harness) as counts:
            replies = await asyncio.gather(*(harness.command("status") for _ in range(20)))
        assert all("acme_to_partner" in json.dumps(reply.body) for reply in replies)
        assert len(counts) == 1
        await harness.click(Action.REJECT, request_id, BOB)
        await harness.slack.wait_for("views.open")
        assert (await harness.submit_reason(request_id, "Not now")).body == {}
        await harness.settle()  # the rejection is written
        after = await harness.command("status")
        assert "acme_to_partner" not in json.dumps(after.body)

    async def test_status_asked_on_and_on_reads_after_the_answers(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Once the shared read is a second old, the next answer still comes from it and
        the read is renewed after that answer is out: people who keep asking do not wait
        for the database, and another replica's change shows in the answer after."""
        request_id = await _submitted_request(harness)
        await harness.settle()
        with _counted_reads(harness) as counts:
            assert "acme_to_partner" in json.dumps((await harness.command("status")).body)
            await harness.settle()
            clock.advance(timedelta(seconds=0.5))
            await harness.command("status")
            await harness.settle()
            assert len(counts) == 1  # half a second old: shared, not renewed
            async with harness.runtime.engine.begin() as connection:  # as another replica
                await connection.execute(
                    sa.text("UPDATE connection_request SET status = 'rejected' WHERE id = :id"),
                    {"id": request_id},
                )
            clock.advance(timedelta(seconds=0.7))
            old = await harness.command("status")  # from the read 1.2 s old
            await harness.settle()
            assert len(counts) == 2  # renewed after that answer
            clock.advance(timedelta(seconds=1.5))
            new = await harness.command("status")  # from the renewal, 1.5 s old
            assert len(counts) == 2
        assert "acme_to_partner" in json.dumps(old.body)
        assert "acme_to_partner" not in json.dumps(new.body)

    async def test_status_asked_together_keeps_each_requesters_own_button(
        self, harness: Harness
    ) -> None:
        """Asked together, status is rendered once for everyone whose list has no button
        of theirs; the requester of an invitation still gets her Show code. Each answer
        is a JSON ack with blocks."""
        request_id = await _submitted_request(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("invited")
        askers = [ALICE, MALLORY, BOB] * 4
        replies = await asyncio.gather(*(harness.command("status", user=u) for u in askers))
        assert all("acme_to_partner" in json.dumps(reply.body["blocks"]) for reply in replies)
        asked = list(zip(askers, (reply.body for reply in replies), strict=True))
        assert all("Show code" in json.dumps(body) for asker, body in asked if asker == ALICE)
        others = [body for asker, body in asked if asker != ALICE]
        assert all(body == others[0] for body in others)
        assert "Show code" not in json.dumps(others[0])

    async def test_status_lists_what_is_pending(self, harness: Harness) -> None:
        """Awaiting approval and awaiting the partner both appear, privately to the asker."""
        request_id = await _submitted_request(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("invited")
        await harness.submit_request(remote_short_name="other")
        reply = await harness.command("status", user=MALLORY)
        text = json.dumps(reply.body)
        assert reply.body.get("response_type", "ephemeral") == "ephemeral"
        for expected in (
            "acme_to_other",
            "awaiting approval",
            "acme_to_partner",
            "awaiting the partner",
        ):
            assert expected in text
        assert f"<@{ALICE}>" in text

    async def test_status_when_nothing_is_pending(self, harness: Harness) -> None:
        """An empty answer says so."""
        reply = await harness.command("status")
        assert "Nothing is pending" in reply.body["text"]

    async def test_help_unknown_and_empty_give_usage(self, harness: Harness) -> None:
        """`help`, an unknown sub-command, no text and unbalanced quotes all get the usage."""
        for text in ("help", "frobnicate", "", 'connect name="oops'):
            reply = await harness.command(text)
            assert reply.status == 200
            assert "Usage" in reply.body["text"], text


class TestHttpEndpoint:
    async def test_bad_signature_is_refused(self, harness: Harness) -> None:
        """A request signed with another secret gets 401 and does nothing."""
        reply = await harness.post_form(harness.command_fields("status"), secret="wrong")
        assert reply.status == 401

    async def test_stale_timestamp_is_refused(self, harness: Harness) -> None:
        """A correctly signed request older than five minutes is a replay: 401."""
        old = int(time.time()) - 301
        reply = await harness.post_form(harness.command_fields("status"), timestamp=old)
        assert reply.status == 401

    async def test_healthz_is_the_process_alone(self, harness: Harness) -> None:
        """GET /healthz: 200 while the process answers, whatever its dependencies do;
        restarting it would not bring back a database or a Jira."""
        url = harness.url.replace("/slack/events", "/healthz")
        harness.simulator.fail("connections", 503)
        await harness.tick()
        async with harness.http.get(url) as response:
            assert response.status == 200
            health = await response.json()
        assert health["ok"] is True
        assert set(health) == {"ok", "version"}

    async def test_readyz(self, harness: Harness, clock: Clock) -> None:
        """GET /readyz: the database, no Socket Mode in HTTP mode, the last poll."""
        url = harness.url.replace("/slack/events", "/readyz")
        async with harness.http.get(url) as response:
            readiness = await response.json()
        assert {k: readiness[k] for k in readiness if k not in ("slack", "ready")} == {
            "database_reachable": True,
            "database_writable": True,
            "last_write_error": None,
            "socket_mode_connected": None,
            "last_successful_poll": None,
            "jira": {"reachable": None, "last_answer": None, "last_error": None},
            "sites": {
                "default": {"reachable": None, "last_answer": None, "last_error": None},
            },
        }
        await harness.tick()  # nothing to watch: Exalate is asked all the same
        async with harness.http.get(url) as response:
            assert (await response.json())["last_successful_poll"] == clock.now.isoformat()

    async def test_readiness_tells_the_truth_about_jira_when_idle(
        self, harness: Harness, clock: Clock
    ) -> None:
        """Nothing pending, Jira down: /readyz is 503 until a probe gets an answer again,
        and says Jira is unreachable."""
        base = harness.url.replace("/slack/events", "")
        async with harness.http.get(f"{base}/readyz") as response:
            assert response.status == 503  # Jira not asked yet
        await harness.tick()
        async with harness.http.get(f"{base}/readyz") as response:
            assert response.status == 200
            assert (await response.json())["jira"]["last_answer"] == clock.now.isoformat()
        harness.simulator.fail("connections", 503)
        clock.advance(timedelta(minutes=1))
        await harness.tick()
        async with harness.http.get(f"{base}/readyz") as response:
            assert response.status == 503
            readiness = await response.json()
        assert readiness["ready"] is False
        jira = readiness["jira"]
        assert (jira["reachable"], jira["last_error"]) == (False, "ExalateServerError")

    async def test_an_unreachable_database_is_unready_and_metrics_still_answer(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """A database that cannot be read: /readyz is 503 and says so, /healthz stays
        200 (a restart would not help), and /metrics serves every other series with
        ``exalate_bot_database_up 0``."""
        await harness.tick()
        # A file that is no SQLite database: it opens, and every query fails. (A path
        # that cannot be opened would do too, but aiosqlite lets the thread of a failed
        # open finish on its own, after this test's event loop may be closed.)
        garbage = tmp_path / "garbage.db"
        garbage.write_bytes(b"this is not an SQLite database " * 64)
        broken = create_async_engine(f"sqlite+aiosqlite:///{garbage}")
        # Only the probes are pointed at it, and given back their real engine after:
        # the rest of the runtime keeps its sessions on the real one, which
        # Runtime.close disposes after them (disposed here, it would be reopened by
        # them and never closed).
        runtime = harness.runtime
        real = (runtime.engine, runtime.repository)
        runtime.engine, runtime.repository = broken, RequestRepository(async_sessionmaker(broken))
        base = harness.url.replace("/slack/events", "")
        try:
            async with harness.http.get(f"{base}/readyz") as r:
                assert r.status == 503
                assert (await r.json())["database_reachable"] is False
            async with harness.http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with harness.http.get(f"{base}/metrics") as r:
                assert r.status == 200
                text = await r.text()
        finally:
            runtime.engine, runtime.repository = real
            await broken.dispose()
        assert "exalate_bot_database_up 0.0" in text
        assert "exalate_bot_listeners_running" in text
        assert "exalate_bot_requests{" not in text

    async def test_metrics(self, harness: Harness) -> None:
        """GET /metrics: requests by state, approvals, Exalate latency, errors by kind."""
        harness.simulator.fail("create", 500)
        request_id = await _submitted_request(harness)
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.card("failed")
        async with harness.http.get(harness.url.replace("/slack/events", "/metrics")) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=")
            text = await r.text()
        assert 'exalate_bot_requests{site="default",state="failed"} 1' in text
        assert "exalate_bot_approvals_total 1" in text
        assert 'exalate_bot_errors_total{kind="ExalateServerError",site="default"} 1' in text
        create = 'call="POST /rest/issuehub/4.0/connections"'
        assert f'exalate_bot_exalate_call_seconds_count{{{create},site="default"}} 1' in text
        assert (
            f'exalate_bot_exalate_call_seconds_bucket{{{create},le="+Inf",site="default"}} 1'
            in text
        )

    async def test_metrics_count_listeners_still_running(self, harness: Harness) -> None:
        """An approval acked and waiting on Exalate is a listener still running, until
        its code is delivered."""
        metrics = harness.url.replace("/slack/events", "/metrics")
        request_id = await _submitted_request(harness)
        await harness.settle()
        harness.simulator.hold_creates()
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.simulator.holds(1)
        async with harness.http.get(metrics) as r:
            assert "exalate_bot_listeners_running 1.0" in await r.text()
        harness.simulator.release_creates()
        await harness.settle()
        async with harness.http.get(metrics) as r:
            assert "exalate_bot_listeners_running 0.0" in await r.text()
