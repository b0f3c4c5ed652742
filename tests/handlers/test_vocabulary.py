"""One vocabulary for what a state means to a person: the card, the requester's DM and
the lists word each status from the same entry, and name who acted the same way."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.approvals.model import (
    BOT_ACTOR,
    EXALATE_ACTOR,
    AuditEvent,
    ConnectionRequest,
    CreateOutcome,
    Page,
    Problem,
    RequestFields,
    Status,
)
from handlers import blocks
from handlers.blocks.text import NAMING_SITES
from handlers.blocks.vocabulary import WORDS, headline, list_state, note, who

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _request(status: Status, **changes: Any) -> ConnectionRequest:
    fields = RequestFields("acme", "partner", "acme_to_partner", "", "SUP")
    values: dict[str, Any] = {"decided_by": "U0BOB", "card_ref": "C1:1"} | changes
    return ConnectionRequest(7, status, 3, fields, "U0ALICE", NOW, NOW, **values)


@pytest.mark.parametrize("status", list(Status))
def test_every_status_is_worded_everywhere(status: Status) -> None:
    """Each status has its three wordings, and every template's slots can be filled."""
    request = _request(status, error="boom", reason="no", exalate_status="Odd")
    assert WORDS[status].state
    assert headline(request)
    assert note(request, "C1")
    assert "{" not in headline(request) + note(request, "C1")


def test_lists_say_the_short_state() -> None:
    """A status list, the one-line summary and the history say the same short state."""
    request = _request(Status.FAILED)
    state = WORDS[Status.FAILED].state
    assert state in str(blocks.status_message(Page((request,), 1), NOW, "U0BOB")[1])
    assert state in blocks.summary_message(request)[0]
    assert state in str(blocks.history_message(request, [])[1])


def test_a_note_without_words_of_its_own_says_the_state() -> None:
    """A DM about a state without a sentence of its own uses the list's words, never the
    stored status value."""
    assert note(_request(Status.ASSISTED), "C1") == (
        "Your request #7 for *acme_to_partner* is now being created in the Exalate console."
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"card_ref": None}, "could not post it to <#C1>"),
        ({}, "waiting for approval in <#C1>"),
    ],
)
def test_pending_note_says_whether_the_card_is_posted(
    changes: dict[str, Any], expected: str
) -> None:
    """A card the channel refused is the requester's to know about."""
    assert expected in note(_request(Status.PENDING_APPROVAL, **changes), "C1")


def test_failed_note_tells_a_taken_name_apart() -> None:
    """A name taken in Exalate asks for another name; any other failure can be retried."""
    taken = _request(Status.FAILED, last_attempt=CreateOutcome.NAME_TAKEN, error="taken")
    assert "Ask again under another name" in note(taken, "C1")
    assert "retry it from the card" in note(_request(Status.FAILED, error="boom"), "C1")


def test_what_exalate_says_shows_while_invited() -> None:
    """An unexpected Exalate status is shown verbatim (escaped) on the card and in lists."""
    request = _request(
        Status.INVITED, has_invitation_code=True, code_dm_ref="D1:1", exalate_status="<Odd>"
    )
    assert "reports its status as &lt;Odd&gt;" in headline(request)
    assert list_state(request) == "Exalate says &lt;Odd&gt;"
    assert list_state(_request(Status.INVITED, exalate_status="pending")) == "awaiting the partner"


@pytest.mark.parametrize(
    ("actor", "name"),
    [
        (EXALATE_ACTOR, "Exalate"),
        (BOT_ACTOR, "the bot"),
        ("U0BOB", "<@U0BOB>"),
        (None, "an approver"),
    ],
)
def test_who_acted(actor: str | None, name: str) -> None:
    """People are mentioned; Exalate, the bot and an unrecorded approver are named."""
    assert who(actor) == name


def test_a_decision_without_its_approver_reads_the_same_everywhere() -> None:
    """The card and the DM both say "an approver", in the middle of a sentence."""
    rejected = _request(Status.REJECTED, decided_by=None, reason="no")
    assert "Rejected by an approver" in headline(rejected)
    assert "rejected by an approver." in note(rejected, "C1")


def test_history_names_who_acted() -> None:
    """The history names Exalate and the bot, and mentions people."""
    events = [
        AuditEvent(7, NOW, EXALATE_ACTOR, None, Status.INVITED, "connection created"),
        AuditEvent(7, NOW, BOT_ACTOR, None, Status.EXPIRED, None),
    ]
    text = str(blocks.history_message(_request(Status.INVITED), events)[1])
    assert "connection created by Exalate" in text
    assert "expired by the bot" in text


@pytest.mark.parametrize("kind", list(Problem))
def test_every_problem_is_worded_with_its_detail(kind: Problem) -> None:
    """The service stores a kind and what the other side said; the card words it."""
    request = _request(Status.FAILED, error=kind.value, error_detail="detail <here>")
    text = headline(request)
    assert "{" not in text
    if kind in (Problem.EXALATE, Problem.UNDELIVERED):
        assert "detail &lt;here&gt;" in text  # escaped


def test_exalates_own_words_reach_the_approvers_not_the_requester() -> None:
    """Exalate's message may name the internal Jira address and the bot's account: the
    card shows it, the requester's DM says where to read it."""
    internal = "Jira at https://jira.internal:8443 redirected to SSO for bot-admin"
    request = _request(Status.FAILED, error=Problem.EXALATE.value, error_detail=internal)
    assert "jira.internal" in headline(request)
    assert "jira.internal" not in note(request, "C1")
    assert "the approvers see its answer on the card" in note(request, "C1")


def test_a_sentence_stored_by_an_older_version_is_shown_as_it_is() -> None:
    request = _request(Status.FAILED, error="Exalate answered 500 & gave up")
    assert request.problem is None
    assert "Exalate answered 500 &amp; gave up" in headline(request)


def test_sites_are_named_where_the_bot_serves_several_whatever_they_are_called() -> None:
    """A bot of several sites names each request's site, `default` included (the site
    of requests made before sites existed); a bot of one site names none, even when
    its file calls it `eu`."""
    for site in ("default", "eu"):
        plain = _request(Status.PENDING_APPROVAL)
        request = replace(plain, fields=replace(plain.fields, site=site))
        token = NAMING_SITES.set(True)
        try:
            assert f"acme_to_partner ({site})" in blocks.card_text(request)
            assert "*Site*" in str(blocks.approval_card(request)[1])
        finally:
            NAMING_SITES.reset(token)
        assert "acme_to_partner (" not in blocks.card_text(request)
        assert "*Site*" not in str(blocks.approval_card(request)[1])
