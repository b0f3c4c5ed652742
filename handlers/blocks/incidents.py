"""Sync-health incidents in Slack: the card in the alerts channel, the notes in its
thread, and the health overview (``/exalate health`` and App Home).

Connection names and statuses are Exalate's words, not the bot's: each is made one line
and escaped before it enters mrkdwn, and a name sits in a code span, so no name can
mention, link or pass for the bot's formatting. A card always names its site, however
many the bot serves: an alert that does not say which node is in trouble cannot be acted
on. Every list is capped and says how many it left out, so a card or an overview never
outgrows Slack's limits however many connections a node has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from bot.health.model import SNOOZES, Incident, IncidentCard, Kind, NodeTrouble, SiteView
from bot.health.notes import Happened, Note
from bot.service.health import SiteOverview
from handlers.blocks.elements import actions
from handlers.blocks.text import (
    MAX_MESSAGE_BLOCKS,
    Json,
    as_written,
    context,
    escape,
    mention,
    mention_any,
    plain,
    section,
)
from handlers.ids import COMMAND, Action

LINES_MAX = 20
"""Lines of one list (a card's incidents, a site's connections): a section's text is
capped at 3,000 characters, so fewer when names are long (``LINES_TEXT_MAX``)."""
LINES_TEXT_MAX = 2900  # leaves room for "…and N more."
NAME_MAX = 120  # one name or status, escaped: twenty of them fit one section
SITE_BLOCKS = 5  # what one site takes in the overview: a divider and at most four
HOME_SITE_INCIDENTS = 3  # open cards named on a site's compact Home line

SNOOZE_LABELS = {"1h": "1 hour", "4h": "4 hours", "1d": "1 day"}
"""What each of ``SNOOZES`` is called on the card; a snooze not named here shows its key."""

_LOOK_ALIKE = "\u02cb"  # modifier letter grave: no end of a code span to Slack
_QUEUES = {"outgoing": "Outgoing sync queue", "incoming": "Incoming sync queue"}
# What a node's trouble says of it, now and once it is over.
_TROUBLE = {
    NodeTrouble.UNREACHABLE.value: ("is unreachable", "was unreachable"),
    NodeTrouble.CREDENTIALS.value: (
        "refuses the bot's credentials",
        "refused the bot's credentials",
    ),
    NodeTrouble.UNREADABLE.value: (
        "gives answers the bot cannot read",
        "gave answers the bot cannot read",
    ),
}


# --- pieces -------------------------------------------------------------------------------


def when(at: datetime) -> str:
    """A time each reader sees in their own time zone; clients that cannot show Slack's
    date token show the UTC fallback."""
    fallback = f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def lasted(minutes: int) -> str:
    """A duration as people say it: "42 min", "3 h 5 min", "2 d 4 h"."""
    minutes = max(0, minutes)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, rest = divmod(minutes, 24 * 60)
    return f"{days} d {rest // 60} h" if rest >= 60 else f"{days} d"


def minutes_between(start: datetime, end: datetime) -> int:
    """Whole minutes, rounded as the thread's resolution note rounds them."""
    return round((end - start).total_seconds() / 60)


def words(text: str, limit: int = NAME_MAX) -> str:
    """Exalate's words on one line, escaped: a line break in a name could start what
    looks like a line of the bot's own."""
    return escape(" ".join(as_written(text).split()), limit)


def code(name: str) -> str:
    """A connection name in a code span. A backtick would end the span early and let
    the rest be formatted, so it shows as its look-alike, the modifier letter grave."""
    shown = words(name.replace("`", _LOOK_ALIKE)) or "(no name)"
    return f"`{shown}`"


def status(detail: str) -> str:
    """A connection's status as Exalate spells it, in bold; an empty one said so (an
    empty bold shows its asterisks)."""
    return f"*{words(detail) or '(no status)'}*"


def queue_name(subject: str) -> str:
    return _QUEUES.get(subject, f"Sync queue {words(subject)}")


def _site(site: str) -> str:
    return words(site, 64)


def said(kind: Kind | None, subject: str, detail: str, site: str, *, now: bool = True) -> str:
    """One incident in a phrase naming its site: "Connection `x` on eu is *Error*"."""
    verb = "is" if now else "was"
    on = f" on {_site(site)}"
    if kind is Kind.CONNECTION:
        return f"Connection {code(subject)}{on} {verb} {status(detail)}"
    if kind is Kind.QUEUE:
        return f"{queue_name(subject)}{on} {verb} stuck at {words(detail)}"
    if kind is Kind.NODE:
        return f"Node {_site(site)} {_trouble(detail, now=now)}"
    return f"An incident{on}"


def _trouble(detail: str, *, now: bool) -> str:
    phrases = _TROUBLE.get(detail)
    if phrases is None:
        return f"{'is' if now else 'was'} in trouble: {words(detail)}"
    return phrases[0] if now else phrases[1]


def _short(incident: Incident) -> str:
    """An incident on a card's line: the headline already named the site."""
    c = incident.condition
    verb = "is" if incident.open else "was"
    if c.kind is Kind.CONNECTION:
        return f"Connection {code(c.subject)} {verb} {status(c.detail)}"
    if c.kind is Kind.QUEUE:
        return f"{queue_name(c.subject)} {verb} stuck at {words(c.detail)}"
    return f"The node {_trouble(c.detail, now=incident.open)}"


def capped(lines: Sequence[str], total: int | None = None) -> str:
    """Lines for one section: at most ``LINES_MAX`` and ``LINES_TEXT_MAX`` characters,
    then how many were left out of ``total`` (by default, of ``lines``)."""
    total = len(lines) if total is None else total
    kept: list[str] = []
    size = 0
    for line in lines[:LINES_MAX]:
        if size + len(line) + 1 > LINES_TEXT_MAX:
            break
        kept.append(line)
        size += len(line) + 1
    if total > len(kept):
        kept.append(f"…and {total - len(kept)} more.")
    return "\n".join(kept)


def owners_of(card: IncidentCard, default_owners: tuple[str, ...]) -> tuple[str, ...]:
    """Who may acknowledge the card: its route's approvers, else the default ones."""
    return card.owners.approvers if card.owners is not None else default_owners


# --- the card -----------------------------------------------------------------------------


def _group(card: IncidentCard) -> str:
    """What the card's incidents are, together: one phrase for one, one line for many."""
    incidents = card.incidents
    if len(incidents) == 1:
        only = incidents[0]
        c = only.condition
        return said(c.kind, c.subject, c.detail, card.site, now=only.open)
    details = {i.condition.detail for i in incidents}
    if all(i.condition.kind is Kind.CONNECTION for i in incidents) and len(details) == 1:
        went = status(details.pop())
        return f"{len(incidents)} connections on {_site(card.site)} went to {went}"
    return f"{len(incidents)} incidents on {_site(card.site)}"


def incident_headline(card: IncidentCard) -> str:
    """The card's first line, also its notification text."""
    base = _group(card)
    resolved_at = card.resolved_at
    if resolved_at is not None:
        took = lasted(minutes_between(card.opened_at, resolved_at))
        return f":white_check_mark: Resolved after {took}: {base}"
    settled = len(card.incidents) - len(card.open)
    progress = f" · {settled} of {len(card.incidents)} resolved" if settled else ""
    return f":red_circle: {base}{progress}"


def _line(incident: Incident) -> str:
    if incident.open:
        return f"• :red_circle: {_short(incident)} · since {when(incident.opened_at)}"
    assert incident.resolved_at is not None
    took = lasted(minutes_between(incident.opened_at, incident.resolved_at))
    return f"• :white_check_mark: {_short(incident)} · resolved after {took}"


def _state(card: IncidentCard) -> str:
    """Who is on it, or what the bot does next; when it began and ended; whose it is."""
    parts: list[str] = []
    resolved_at = card.resolved_at
    if card.acked_by is not None:
        at = f" {when(card.acked_at)}" if card.acked_at is not None else ""
        parts.append(f"Acknowledged by {mention(card.acked_by)}{at}")
    elif resolved_at is None:
        if card.snoozed_until is not None and card.snoozed_by is not None:
            parts.append(f"Snoozed until {when(card.snoozed_until)} by {mention(card.snoozed_by)}")
        elif card.reminded_at is not None:
            parts.append(f"Reminded {when(card.reminded_at)}; nobody acknowledged it yet")
        else:
            parts.append("Not acknowledged yet")
    parts.append(f"opened {when(card.opened_at)}")
    if resolved_at is not None:
        parts.append(f"resolved {when(resolved_at)}")
    whose = "the site's approvers" if card.owners is None else _route(card)
    parts.append(f"owned by {whose}")
    said_all = " · ".join(parts)
    return said_all[0].upper() + said_all[1:]


def _route(card: IncidentCard) -> str:
    assert card.owners is not None
    number = card.owners.route
    return "its route's approvers" if number is None else f"the approvers of route #{number}"


def snooze_value(card_id: int, choice: str) -> str:
    """What a snooze option carries: the card and the choice, nothing else."""
    return f"{card_id}:{choice}"


def _snooze_menu(card: IncidentCard) -> Json:
    return {
        "type": "static_select",
        "action_id": Action.INCIDENT_SNOOZE.value,
        "placeholder": plain("Snooze reminders", 150),
        "options": [
            {
                "text": plain(SNOOZE_LABELS.get(choice, choice), 75),
                "value": snooze_value(card.id, choice),
            }
            for choice in SNOOZES
        ],
    }


def open_in_exalate(console: str | None) -> Json | None:
    """A link button to the node's console; None where there is no usable address.
    Slack still sends a click on it, which ``Action.INCIDENT_OPEN``'s listener acks."""
    if not console or len(console) > 3000 or not console.startswith(("https://", "http://")):
        return None
    return {
        "type": "button",
        "text": plain("Open in Exalate", 75),
        "action_id": Action.INCIDENT_OPEN.value,
        "url": console,
    }


def incident_card(card: IncidentCard, console: str | None) -> list[Json]:
    """The card: the headline, a line per incident, the state, and the buttons. The
    buttons that act go once nobody needs them: when every incident is resolved, and
    (but for the console's link) once someone acknowledged the card."""
    ordered = sorted(card.incidents, key=lambda i: (not i.open, i.opened_at, i.id))
    body: list[Json] = [section(incident_headline(card))]
    if ordered:  # a card always has one; an empty section is one Slack refuses
        body.append(section(capped([_line(i) for i in ordered])))
    body.append(context(_state(card)))
    elements: list[Json] = []
    if card.open and card.acked_by is None:
        acknowledge = {
            "type": "button",
            "text": plain("Acknowledge", 75),
            "action_id": Action.INCIDENT_ACK.value,
            "value": str(card.id),
            "style": "primary",
        }
        elements += [acknowledge, _snooze_menu(card)]
    link = open_in_exalate(console)
    if link is not None:
        elements.append(link)
    if elements:
        body.append(actions(*elements))
    return body


# --- the thread ---------------------------------------------------------------------------


def incident_note(card: IncidentCard, note: Note, default_owners: tuple[str, ...]) -> str:
    """A reply under the card, worded from ``note``. Only the reminder mentions the
    owners: it is the one note that asks something of them."""
    match note.happened:
        case Happened.OPENED:
            what = said(note.kind, note.subject, note.detail, card.site)
            return f":red_circle: Also on this card now: {what}"
        case Happened.CHANGED:
            return f":arrows_counterclockwise: {_changed(card, note)}"
        case Happened.RESOLVED:
            took = "" if note.minutes is None else f": resolved after {lasted(note.minutes)}"
            return f":white_check_mark: {_healed(card, note)}{took}"
        case Happened.ACKNOWLEDGED:
            return f"{_actor(note)} acknowledged; no more reminders."
        case Happened.SNOOZED:
            until = "for a while" if note.until is None else f"until {when(note.until)}"
            return f":zzz: {_actor(note)} snoozed reminders {until}."
        case Happened.REMINDER:
            return _reminder(card, default_owners)
    return incident_headline(card)


def _actor(note: Note) -> str:
    return mention(note.actor) if note.actor else "Someone"


def _changed(card: IncidentCard, note: Note) -> str:
    was = f" (was {words(note.before)})" if note.before else ""
    if note.kind is Kind.CONNECTION:
        return f"{code(note.subject)} is now {status(note.detail)}{was}"
    if note.kind is Kind.QUEUE:
        return (
            f"{queue_name(note.subject)} on {_site(card.site)} is at {words(note.detail)} now{was}"
        )
    return f"{said(note.kind, note.subject, note.detail, card.site)} now{was}"


def _healed(card: IncidentCard, note: Note) -> str:
    site = _site(card.site)
    if note.kind is Kind.CONNECTION:
        return f"{code(note.subject)} is syncing again"
    if note.kind is Kind.QUEUE:
        return f"{queue_name(note.subject)} on {site} is draining again"
    if note.kind is Kind.NODE:
        return f"Node {site} is answering again"
    return f"An incident on {site} is over"


def _reminder(card: IncidentCard, default_owners: tuple[str, ...]) -> str:
    since = (
        ""
        if card.reminded_at is None
        else f" after {lasted(minutes_between(card.opened_at, card.reminded_at))}"
    )
    owners = owners_of(card, default_owners)
    who = f": {mention_any(owners)}" if owners else "."
    return f":bell: Still open{since} and nobody acknowledged it{who}"


# --- the overview -------------------------------------------------------------------------


def _reach(view: SiteView | None) -> str:
    if view is None:
        return "not polled yet"
    polled = f"last poll {when(view.observed_at)}"
    if view.reachable:
        return f":large_green_circle: reachable · {polled}"
    trouble = _trouble(view.trouble, now=True) if view.trouble else "is not answering"
    return f":red_circle: the node {trouble} · {polled}"


def _queues(view: SiteView) -> str:
    sizes = [f"{words(name, 40)} {size}" for name, size in view.queues]
    unwatched = [f"{words(name, 40)}: not watched (no endpoint)" for name in view.unwatched]
    shown = " · ".join(sizes + unwatched) or "not read yet"
    return f"Sync queues: {shown}"


def _connections(view: SiteView) -> str:
    """Each connection and its status, those not Active first: they are why one asks."""
    if not view.connections:
        return "No connections."
    ordered = sorted(view.connections, key=lambda pair: pair[1].lower() == "active")
    lines = [f"• {code(name)}: {words(status) or '(no status)'}" for name, status in ordered]
    return capped(lines)


def _cards(cards: Sequence[IncidentCard]) -> str:
    lines = [f"• {incident_headline(card)} · in <#{words(card.channel, 40)}>" for card in cards]
    return "*Open incidents*\n" + capped(lines)


def _site_header(overview: SiteOverview, consoles: Mapping[str, str]) -> Json:
    header = section(f"*{_site(overview.site)}* · {_reach(overview.view)}")
    link = open_in_exalate(consoles.get(overview.site))
    if link is not None:
        header["accessory"] = link
    return header


def health_message(
    overviews: Sequence[SiteOverview], consoles: Mapping[str, str]
) -> tuple[str, list[Json]]:
    """``/exalate health``: each site's node, connections, queues and open incidents,
    within one message; the sites that do not fit are named by count."""
    cards = sum(len(o.cards) for o in overviews)
    text = f"Sync health: {len(overviews)} site(s), {cards} open incident card(s)"
    body: list[Json] = [section("*Sync health*")]
    fits = (MAX_MESSAGE_BLOCKS - 2) // SITE_BLOCKS  # the title, and the "more" line
    for overview in overviews[:fits]:
        body += [{"type": "divider"}, _site_header(overview, consoles)]
        view = overview.view
        if view is not None:
            body += [section(_connections(view)), context(_queues(view))]
        if overview.cards:
            body.append(section(_cards(overview.cards)))
    if len(overviews) > fits:
        body.append(
            context(f"…and {len(overviews) - fits} more sites: ask `{COMMAND} health site=NAME`.")
        )
    return text, body


def _compact(overview: SiteOverview) -> str:
    """A site in one block for App Home: how its connections stand (counted by status),
    its queues, and its open incidents; the full lists are ``/exalate health``'s."""
    parts = [f"*{_site(overview.site)}* · {_reach(overview.view)}"]
    view = overview.view
    if view is not None:
        counts = Counter(words(status, 40) or "(no status)" for _, status in view.connections)
        shown = ", ".join(f"{n} {status}" for status, n in counts.most_common(6))
        more = ", …" if len(counts) > 6 else ""
        parts.append(
            f"{len(view.connections)} connections: {shown}{more}" if counts else "no connections"
        )
        parts.append(_queues(view))
    cards = overview.cards
    if cards:
        named = [incident_headline(card) for card in cards[:HOME_SITE_INCIDENTS]]
        more = f"; and {len(cards) - len(named)} more" if len(cards) > len(named) else ""
        parts.append(f"*{len(cards)} open incident card(s)*: " + "; ".join(named) + more)
    else:
        parts.append("no open incidents")
    return "\n".join(parts)


def home_health(overviews: Sequence[SiteOverview], room: int) -> list[Json]:
    """App Home's "Sync health": a block per site, in at most ``room`` blocks (what the
    rest of the Home tab leaves of Slack's 100); nothing when not even one site fits."""
    if room < 3 or not overviews:
        return []
    fits = room - 2 if len(overviews) <= room - 2 else room - 3
    body: list[Json] = [{"type": "divider"}, section("*Sync health*")]
    body += [section(_compact(overview)) for overview in overviews[:fits]]
    if len(overviews) > fits:
        body.append(
            context(f"…and {len(overviews) - fits} more sites: `{COMMAND} health` shows them.")
        )
    return body
