"""What an incident card, its thread and the health overview say: grouped headlines,
no actions once nothing is open, Exalate's words kept inert, lists capped within Slack's
limits, and controls that carry the card and the choice only."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.approvals.model import ConnectionRequest, Page, RequestFields, Status
from bot.approvals.routes import Rule
from bot.health.model import (
    SNOOZES,
    Condition,
    Incident,
    IncidentCard,
    Kind,
    NodeTrouble,
    SiteView,
)
from bot.health.notes import Happened, Note
from bot.sandbox.slack_emulator.block_kit import block_problems, view_problems
from bot.service.health import SiteOverview
from handlers import blocks
from handlers.blocks.incidents import (
    LINES_MAX,
    health_message,
    home_health,
    incident_card,
    incident_headline,
    incident_note,
)
from handlers.home import HOME_BLOCKS_MAX
from handlers.ids import Action
from handlers.incident_actions import card_id_of, snooze_of

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CONSOLE = "https://jira-eu.example.test/plugins/servlet/exalate"
HOSTILE = "<!channel> *x*"
OWNERS = ("U0ANNA", "S0OPS")


def incident(
    number: int = 1,
    subject: str = "acme-to-partner",
    detail: str = "Error",
    kind: Kind = Kind.CONNECTION,
    lasted: timedelta | None = None,
) -> Incident:
    resolved = None if lasted is None else NOW + lasted
    return Incident(number, 9, Condition("eu", kind, subject, detail), NOW, resolved)


def card(*incidents: Incident, **changes: Any) -> IncidentCard:
    drawn = IncidentCard(9, "eu", "C0ALERTS", None, NOW, incidents or (incident(),))
    return replace(drawn, **changes)


def elements(body: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in body if b["type"] == "actions" for e in b["elements"]]


def controls(body: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for e in elements(body)]


def valid(body: list[dict[str, Any]]) -> None:
    """As strict as Slack: the emulator's check of a message's blocks."""
    assert block_problems(body) == []


class TestHeadline:
    @pytest.mark.parametrize(
        ("one", "said"),
        [
            (incident(), "Connection `acme-to-partner` on eu is *Error*"),
            (
                incident(subject="outgoing", detail="240", kind=Kind.QUEUE),
                "Outgoing sync queue on eu is stuck at 240",
            ),
            (
                incident(subject="", detail=NodeTrouble.UNREACHABLE.value, kind=Kind.NODE),
                "Node eu is unreachable",
            ),
            (
                incident(subject="", detail=NodeTrouble.CREDENTIALS.value, kind=Kind.NODE),
                "Node eu refuses the bot's credentials",
            ),
        ],
    )
    def test_one_incident_says_what_and_where(self, one: Incident, said: str) -> None:
        assert incident_headline(card(one)) == f":red_circle: {said}"

    def test_connections_gone_the_same_way_are_one_line(self) -> None:
        seven = [incident(n, f"c{n}") for n in range(7)]
        assert incident_headline(card(*seven)) == ":red_circle: 7 connections on eu went to *Error*"

    def test_mixed_incidents_are_counted(self) -> None:
        mixed = (
            incident(1),
            incident(2, "b", "Deactivated"),
            incident(3, "outgoing", "9", Kind.QUEUE),
        )
        assert incident_headline(card(*mixed)) == ":red_circle: 3 incidents on eu"

    def test_partly_resolved_says_how_far(self) -> None:
        some = (incident(1), incident(2, "b", lasted=timedelta(minutes=5)))
        assert incident_headline(card(*some)).endswith("· 1 of 2 resolved")

    def test_resolved_says_how_long_and_in_the_past(self) -> None:
        done = card(incident(lasted=timedelta(minutes=42)))
        assert incident_headline(done) == (
            ":white_check_mark: Resolved after 42 min: "
            "Connection `acme-to-partner` on eu was *Error*"
        )


class TestCard:
    def test_open_card_offers_acknowledge_snooze_and_the_console(self) -> None:
        body = incident_card(card(), CONSOLE)
        valid(body)
        assert controls(body) == [
            Action.INCIDENT_ACK.value,
            Action.INCIDENT_SNOOZE.value,
            Action.INCIDENT_OPEN.value,
        ]
        assert "Not acknowledged yet" in json.dumps(body)

    def test_resolved_card_keeps_only_the_console_link(self) -> None:
        done = card(
            incident(lasted=timedelta(minutes=42)), incident(2, "b", lasted=timedelta(hours=3))
        )
        body = incident_card(done, CONSOLE)
        valid(body)
        assert controls(body) == [Action.INCIDENT_OPEN.value]
        assert body[0]["text"]["text"].startswith(":white_check_mark: Resolved after 3 h:")
        assert "resolved after 42 min" in body[1]["text"]["text"]

    def test_resolved_card_without_a_console_has_no_actions(self) -> None:
        body = incident_card(card(incident(lasted=timedelta(minutes=1))), None)
        valid(body)
        assert controls(body) == []

    def test_acknowledged_card_says_who_and_asks_nothing_more(self) -> None:
        body = incident_card(card(acked_by="U0BOB", acked_at=NOW), CONSOLE)
        valid(body)
        assert controls(body) == [Action.INCIDENT_OPEN.value]
        assert "Acknowledged by <@U0BOB> <!date^" in body[2]["elements"][0]["text"]

    def test_snoozed_and_reminded_cards_say_so(self) -> None:
        later = NOW + timedelta(hours=4)
        snoozed = incident_card(card(snoozed_by="U0BOB", snoozed_until=later), None)
        stamp = int(later.timestamp())
        assert f"Snoozed until <!date^{stamp}^" in snoozed[2]["elements"][0]["text"]
        assert "by <@U0BOB>" in snoozed[2]["elements"][0]["text"]
        reminded = incident_card(card(reminded_at=later), None)
        assert "Reminded <!date^" in reminded[2]["elements"][0]["text"]

    def test_owners_are_named_without_a_ping(self) -> None:
        routed = card(owners=Rule(OWNERS, route=2))
        state = incident_card(routed, None)[2]["elements"][0]["text"]
        assert "owned by the approvers of route #2" in state
        assert "<@" not in state

    @pytest.mark.parametrize("where", ["subject", "detail"])
    def test_exalate_words_are_inert(self, where: str) -> None:
        """A hostile name or status cannot broadcast, mention, link or add lines."""
        hostile = f"{HOSTILE}\n• <https://evil.example|Approved> `&`"
        drawn = incident(subject=hostile) if where == "subject" else incident(detail=hostile)
        body = incident_card(card(drawn), CONSOLE)
        valid(body)
        shown = json.dumps(body)
        assert "<!channel>" not in shown
        assert "<https://evil" not in shown
        assert "&lt;!channel&gt; *x*" in shown
        assert "\n" not in body[0]["text"]["text"]  # one line each: no forged lines
        assert "\n" not in body[1]["text"]["text"]

    def test_a_backtick_cannot_end_the_name_early(self) -> None:
        body = incident_card(card(incident(subject="a` *bold* `b")), None)
        assert body[0]["text"]["text"].count("`") == 2

    def test_many_long_incidents_stay_within_slack_limits(self) -> None:
        many = [incident(n, f"{n}-" + "&" * 300) for n in range(200)]
        body = incident_card(card(*many), CONSOLE)
        valid(body)
        lines = body[1]["text"]["text"].split("\n")
        assert len(lines) <= LINES_MAX + 1
        assert lines[-1] == f"…and {200 - len(lines) + 1} more."
        assert len(body[1]["text"]["text"]) <= 3000

    def test_open_incidents_are_listed_before_resolved_ones(self) -> None:
        mixed = [incident(n, f"gone{n}", lasted=timedelta(minutes=1)) for n in range(30)]
        body = incident_card(card(*mixed, incident(99, "still-broken")), None)
        assert "still-broken" in body[1]["text"]["text"].split("\n")[0]

    def test_controls_carry_the_card_and_the_choice_only(self) -> None:
        body = incident_card(card(), CONSOLE)
        ack, snooze, link = elements(body)
        assert ack["value"] == "9"
        assert card_id_of(ack["value"]) == 9
        values = [option["value"] for option in snooze["options"]]
        assert values == [f"9:{choice}" for choice in SNOOZES]
        assert [snooze_of(v) for v in values] == [(9, choice) for choice in SNOOZES]
        assert all(re.fullmatch(r"9(:(1h|4h|1d))?", v) for v in [ack["value"], *values])
        assert "value" not in link
        assert link["url"] == CONSOLE

    @pytest.mark.parametrize("console", ["javascript:alert(1)", "", "https://x/" + "a" * 3000])
    def test_no_link_that_is_not_a_web_address(self, console: str) -> None:
        assert Action.INCIDENT_OPEN.value not in controls(incident_card(card(), console))


class TestNotes:
    @pytest.mark.parametrize(
        ("note", "said"),
        [
            (
                Note(Happened.OPENED, Kind.CONNECTION, "acme", "Error"),
                ":red_circle: Also on this card now: Connection `acme` on eu is *Error*",
            ),
            (
                Note(Happened.CHANGED, Kind.CONNECTION, "acme", "Deactivated", before="Error"),
                ":arrows_counterclockwise: `acme` is now *Deactivated* (was Error)",
            ),
            (
                Note(Happened.CHANGED, Kind.QUEUE, "outgoing", "300", before="240"),
                ":arrows_counterclockwise: Outgoing sync queue on eu is at 300 now (was 240)",
            ),
            (
                Note(Happened.RESOLVED, Kind.CONNECTION, "acme", "Error", minutes=42),
                ":white_check_mark: `acme` is syncing again: resolved after 42 min",
            ),
            (
                Note(Happened.RESOLVED, Kind.QUEUE, "incoming", "240", minutes=90),
                ":white_check_mark: Incoming sync queue on eu is draining again: "
                "resolved after 1 h 30 min",
            ),
            (
                Note(Happened.RESOLVED, Kind.NODE, "", "unreachable", minutes=3000),
                ":white_check_mark: Node eu is answering again: resolved after 2 d 2 h",
            ),
            (
                Note(Happened.ACKNOWLEDGED, actor="U0BOB"),
                "<@U0BOB> acknowledged; no more reminders.",
            ),
            (
                Note(Happened.SNOOZED, actor="U0BOB", until=NOW),
                ":zzz: <@U0BOB> snoozed reminders until "
                f"<!date^{int(NOW.timestamp())}^{{date_short_pretty}} at {{time}}|"
                "2026-11-26 12:00 UTC>.",
            ),
        ],
    )
    def test_each_note_is_worded(self, note: Note, said: str) -> None:
        text = incident_note(card(), note, OWNERS)
        assert text == said
        valid([blocks.section(text)])

    def test_every_kind_of_note_is_worded(self) -> None:
        """No kind falls through to the card's headline."""
        for happened in Happened:
            text = incident_note(card(), Note(happened, Kind.CONNECTION, "acme"), OWNERS)
            assert text != incident_headline(card()), happened

    def test_reminder_calls_the_default_owners(self) -> None:
        reminded = card(reminded_at=NOW + timedelta(hours=2))
        text = incident_note(reminded, Note(Happened.REMINDER), OWNERS)
        assert text == (
            ":bell: Still open after 2 h and nobody acknowledged it: <@U0ANNA> or <!subteam^S0OPS>"
        )

    def test_reminder_calls_the_route_owners(self) -> None:
        routed = card(owners=Rule(("U0ROUTE",), route=1))
        text = incident_note(routed, Note(Happened.REMINDER), OWNERS)
        assert text.endswith("nobody acknowledged it: <@U0ROUTE>")

    def test_hostile_names_in_notes_are_inert(self) -> None:
        note = Note(Happened.CHANGED, Kind.CONNECTION, HOSTILE, HOSTILE, before=HOSTILE)
        text = incident_note(card(), note, OWNERS)
        assert "<!channel>" not in text
        assert "&lt;!channel&gt;" in text


def overview(site: str = "eu", view: SiteView | None = None, *cards: IncidentCard) -> SiteOverview:
    return SiteOverview(site, view, list(cards))


def site_view(**changes: Any) -> SiteView:
    values: dict[str, Any] = {
        "site": "eu",
        "observed_at": NOW,
        "connections": (("acme-to-partner", "Error"), ("beta", "Active")),
        "queues": (("outgoing", 240),),
        "unwatched": ("incoming",),
    } | changes
    return SiteView(**values)


class TestOverview:
    def test_a_site_shows_node_connections_queues_and_incidents(self) -> None:
        text, body = health_message([overview("eu", site_view(), card())], {"eu": CONSOLE})
        valid(body)
        shown = json.dumps(body)
        assert ":large_green_circle: reachable" in shown
        assert "`acme-to-partner`: Error" in shown
        assert "outgoing 240" in shown
        assert "incoming: not watched (no endpoint)" in shown
        assert "in <#C0ALERTS>" in shown
        assert Action.INCIDENT_OPEN.value in shown
        assert text.startswith("Sync health")

    def test_a_site_not_polled_yet_says_so(self) -> None:
        _, body = health_message([overview("us")], {})
        valid(body)
        assert body[-1]["text"]["text"] == "*us* · not polled yet"

    def test_an_unreachable_node_says_why(self) -> None:
        down = site_view(reachable=False, trouble=NodeTrouble.CREDENTIALS.value)
        _, body = health_message([overview("eu", down)], {})
        assert "the node refuses the bot's credentials" in json.dumps(body)

    def test_connections_not_active_come_first_and_long_lists_are_capped(self) -> None:
        lots = (*((f"ok-{n}", "Active") for n in range(500)), ("broken", "Error"))
        _, body = health_message([overview("eu", site_view(connections=lots))], {})
        valid(body)
        listing = next(b["text"]["text"] for b in body if "`ok-" in json.dumps(b))
        assert listing.startswith("• `broken`: Error")
        assert listing.endswith("more.")

    def test_many_sites_fit_one_message(self) -> None:
        sites = [overview(f"s{n}", site_view(site=f"s{n}"), card()) for n in range(30)]
        _, body = health_message(sites, {f"s{n}": CONSOLE for n in range(30)})
        valid(body)
        assert "more sites" in json.dumps(body[-1])

    def test_hostile_names_in_the_overview_are_inert(self) -> None:
        view = site_view(connections=((HOSTILE, HOSTILE),), queues=((HOSTILE, 1),))
        _, body = health_message([overview("eu", view)], {})
        assert "<!channel>" not in json.dumps(body)


class TestHome:
    def test_home_stays_within_a_home_tab(self) -> None:
        """The fullest request lists, and more sites than fit: still a valid Home tab."""
        fields = RequestFields("acme", "partner", "acme_to_partner", "", "SUP")
        request = ConnectionRequest(7, Status.INVITED, 1, fields, "U0ANNA", NOW, NOW)
        full = Page(items=(request,) * blocks.HOME_LIST_MAX, total=40)
        view = blocks.home_view(
            viewer="U0ANNA", now=NOW, mine=full, awaiting_me=full, invitations=full, accepted=full
        )
        sites = [overview(f"s{n}", site_view(site=f"s{n}"), card(), card()) for n in range(150)]
        view["blocks"] += home_health(sites, HOME_BLOCKS_MAX - len(view["blocks"]))
        assert len(view["blocks"]) == HOME_BLOCKS_MAX
        assert view_problems(view, kind="home") == []
        assert "more sites" in json.dumps(view["blocks"][-1])

    def test_a_site_in_one_line(self) -> None:
        body = home_health([overview("eu", site_view(), card())], 10)
        valid(body)
        line = body[2]["text"]["text"]
        assert "1 Error, 1 Active" in line
        assert "outgoing 240" in line
        assert "*1 open incident card(s)*" in line

    def test_nothing_when_there_is_no_room(self) -> None:
        assert home_health([overview()], 2) == []
