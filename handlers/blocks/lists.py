"""Lists of requests: ``/exalate status``, a request's history, and the App Home.

Every list says how many it left out instead of outgrowing Slack's block limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.approvals.model import (
    AuditEvent,
    ConnectionRequest,
    ForeignInvitation,
    Page,
    Status,
)
from handlers.blocks.elements import button
from handlers.blocks.text import (
    MAX_MESSAGE_BLOCKS,
    Json,
    age,
    connection_name,
    context,
    escape,
    mention,
    plain,
    section,
    site_suffix,
)
from handlers.blocks.vocabulary import WORDS, list_state, who
from handlers.ids import COMMAND, Action, View

FOREIGN_MAX = 20  # lines in one section, whose text Slack caps at 3,000 characters:
FOREIGN_TEXT_MAX = 2900  # fewer when names are long, leaving room for "…and N more."

LIST_MAX = MAX_MESSAGE_BLOCKS - 3  # rows, leaving room for a title and a "more" line
FOREIGN_BLOCKS = 3  # the title, the lines and the "as of" of the outside list
STATUS_LIST_MAX = LIST_MAX - FOREIGN_BLOCKS


HOME_LIST_MAX = 15  # four lists of 15 rows stay within a Home tab's 100 blocks


def request_line(request: ConnectionRequest, now: datetime, viewer: str) -> Json:
    """One request in a list; its requester gets a Show code button while it is pending."""
    since = (
        f"invited {age(request.updated_at, now)} ago"
        if request.status is Status.INVITED
        else f"{age(request.created_at, now)} ago"
    )
    line = section(
        f"*{connection_name(request)}* · {list_state(request)} · requested by "
        f"{mention(request.requester)} · {since} · #{request.id}"
    )
    if shows_code_to(request, viewer):
        line["accessory"] = button("Show code", Action.SHOW_CODE, request)
    return line


def by_site(lines: list[Json], page: Page) -> list[Json]:
    """The lines grouped by site, each group headed by its site's name, when the page
    holds requests of more than one site; as they are otherwise. No block is added,
    so a list never outgrows Slack's limit for it."""
    sites = list(dict.fromkeys(request.fields.site for request in page.items))
    if len(sites) < 2:
        return lines
    grouped: list[Json] = []
    for site in sites:
        group = [line for line, r in zip(lines, page.items, strict=True) if r.fields.site == site]
        first = group[0]["text"]
        group[0] = group[0] | {"text": first | {"text": f"*Site {escape(site)}*\n{first['text']}"}}
        grouped += group
    return grouped


def shows_code_to(request: ConnectionRequest, viewer: str) -> bool:
    """Whether ``viewer``'s line for ``request`` has a Show code button: theirs, awaiting
    the partner, with a code stored."""
    return (
        viewer == request.requester
        and request.status is Status.INVITED
        and request.has_invitation_code
    )


def request_list(title: str, page: Page, now: datetime, viewer: str, *, empty: str) -> list[Json]:
    """A titled list that says how many it left out instead of outgrowing Slack's limits."""
    blocks: list[Json] = [section(f"*{title}* ({page.total})" if page.total else f"*{title}*")]
    if not page.items:
        return [*blocks, context(empty)]
    blocks += by_site([request_line(request, now, viewer) for request in page.items], page)
    if page.total > len(page.items):
        blocks.append(context(f"…and {page.total - len(page.items)} more."))
    return blocks


def status_message(
    page: Page,
    now: datetime,
    viewer: str,
    *,
    mine: bool = False,
    foreign: Sequence[ForeignInvitation] = (),
    listed_at: datetime | None = None,
) -> tuple[str, list[Json]]:
    """``/exalate status`` and ``status mine``, within one message however many there are.

    ``foreign``: connections pending in Exalate that no request created, from the list
    the poller read at ``listed_at``; shown after the requests, in ``status`` only.
    """
    if mine:
        title, empty = "Your Exalate connection requests", "You have not asked for any yet."
    else:
        title = "Pending Exalate connections"
        empty = "Nothing is pending: no request awaits approval and no invitation awaits a partner."
    outside = [] if mine else foreign_list(foreign, now, listed_at)
    if not page.total:
        return empty, [section(empty), *outside]
    return f"{title}: {page.total}", [
        *request_list(title, page, now, viewer, empty=empty),
        *outside,
    ]


def foreign_list(
    foreign: Sequence[ForeignInvitation], now: datetime, listed_at: datetime | None
) -> list[Json]:
    """Pending invitations initiated in the Exalate console, each with how long this
    bot has seen it pending (Exalate's list tells no creation time); nothing if none."""
    if not foreign or listed_at is None:
        return []
    lines: list[str] = []
    for invitation in foreign[:FOREIGN_MAX]:
        name = f"*{escape(invitation.name)}*{site_suffix(invitation.site)}"
        line = f"• {name}: seen pending for {age(invitation.since, now)}"
        if sum(len(kept) + 1 for kept in lines) + len(line) > FOREIGN_TEXT_MAX:
            break
        lines.append(line)
    if len(foreign) > len(lines):
        lines.append(f"…and {len(foreign) - len(lines)} more.")
    return [  # FOREIGN_BLOCKS of them
        section(f"*Pending in Exalate, created outside Slack* ({len(foreign)})"),
        section("\n".join(lines)),
        context(f"From Exalate's connection list as of {listed_at:%Y-%m-%d %H:%M} UTC."),
    ]


def summary_message(request: ConnectionRequest) -> tuple[str, list[Json]]:
    """What anyone may know of a request: its name, number and state, not who did what."""
    text = (
        f"*{connection_name(request)}* (request #{request.id}) is "
        f"{WORDS[request.status].state}. Its history is for its requester and the approvers."
    )
    return text, [section(text)]


def history_message(
    request: ConnectionRequest, events: Sequence[AuditEvent]
) -> tuple[str, list[Json]]:
    """``/exalate status <name>``: what happened to the request, when, and by whom."""
    name = connection_name(request)
    lines = [
        f"• {event.at:%Y-%m-%d %H:%M} UTC: {escape(event.note or event.to_status.value)} "
        f"by {who(event.actor)}"
        for event in events
    ]
    if len(lines) > LIST_MAX:  # keep the beginning and the latest; say what is left out
        head, tail = lines[:5], lines[-(LIST_MAX - 6) :]
        lines = [*head, f"…{len(lines) - len(head) - len(tail)} events left out…", *tail]
    blocks = [
        section(f"*History of {name}* (request #{request.id}, now {WORDS[request.status].state})"),
        *(section(line) for line in lines),
    ]
    return f"History of {name}", blocks


def home_view(
    *,
    viewer: str,
    now: datetime,
    mine: Page,
    awaiting_me: Page | None,
    invitations: Page,
    accepted: Page,
) -> Json:
    """The App Home dashboard; ``awaiting_me`` is None for people who are not approvers."""
    blocks: list[Json] = [{"type": "header", "text": plain("Exalate connections", 150)}]
    sections: list[tuple[str, Page | None, str]] = [
        ("Your requests", mine, f"Nothing yet. Ask with `{COMMAND} connect`."),
        ("Waiting for your approval", awaiting_me, "Nothing waits for you."),
        ("Pending invitations", invitations, "No invitation awaits a partner."),
        ("Recently accepted", accepted, "No partner accepted in the last two weeks."),
    ]
    for title, page, empty in sections:
        if page is not None:
            blocks += [{"type": "divider"}, *request_list(title, page, now, viewer, empty=empty)]
    return {"type": "home", "callback_id": View.HOME.value, "blocks": blocks}
