"""The small pieces every message is made of, and the escaping of user text.

Everything a person typed goes through ``escape`` before it enters mrkdwn, so a
description cannot ping ``@channel``, mention people or forge links, and every mrkdwn
object is ``verbatim``, so a bare URL in it stays text. What people write at length (a
description, a reason) is shown by ``user_text``: plain text under a label, so it cannot
pass for the bot's own words either.
"""

from __future__ import annotations

import unicodedata
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from bot.approvals.model import ConnectionRequest

Json = dict[str, Any]


MAX_MESSAGE_BLOCKS = 50
PLAIN_TEXT_MAX = 3000
"""The longest text of a plain_text object Slack takes in a section."""

# Marks, embeddings, overrides and isolates: in someone's text they reorder what follows
# ("devorppA" shown as "Approved"), so their words could pass for the bot's.
_BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)
# Letters that show as nothing: a line of them is a blank line.
_BLANK_LETTERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")


def escape(text: str, limit: int = 2000) -> str:
    """Make user text inert in mrkdwn (no mentions, links or broadcasts), at most ``limit``.

    Escaping can grow text fivefold (``&`` → ``&amp;``), so an over-long text is cut on
    the raw side, where the cut cannot split an entity, and ends with an ellipsis.
    """
    escaped = _escape(text)
    if len(escaped) <= limit:
        return escaped
    kept = size = 0  # the whole text is too long, so this stops before its end
    while size + len(_escape(text[kept])) < limit:
        size += len(_escape(text[kept]))
        kept += 1
    return _escape(text[:kept]) + "…"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def as_written(text: str) -> str:
    """Someone's text made fit to stand beside the bot's words: bidi controls removed,
    every kind of line break a plain one, each run of blank lines (also lines of spaces
    or invisible characters) one blank line, none at either end. Blank lines and
    reordered words are how a text dresses up as a second card below the first."""
    kept: list[str] = []
    for line in text.translate(_BIDI_CONTROLS).splitlines():
        blank = all(_invisible(character) for character in line)
        if not blank:
            kept.append(line)
        elif kept and kept[-1]:
            kept.append("")
    return "\n".join(kept).rstrip("\n")


def _invisible(character: str) -> bool:
    return (
        character.isspace()
        or character in _BLANK_LETTERS
        or unicodedata.category(character) == "Cf"
    )


def user_text(label: str, text: str) -> list[Json]:
    """Someone's words on a message, shown as theirs: ``label`` (the bot's, mrkdwn) in a
    context line, then ``text`` made ``as_written`` and escaped in plain_text sections,
    none cut. Plain text is the choice because Slack renders nothing in it: no bold
    "heading", no emoji code, no mention, link or quote, so nothing in it can look like
    the bot's own formatting; its three entities are escaped as everywhere (Slack
    decodes them in every text object). A text longer than one section takes several,
    split between characters (never inside an entity); empty text shows nothing."""
    shown = as_written(text)
    if not shown:
        return []
    return [
        context(label),
        *(
            {"type": "section", "text": literal(piece)}
            for piece in escaped_pieces(shown, PLAIN_TEXT_MAX)
        ),
    ]


def escaped_pieces(text: str, size: int) -> list[str]:
    """``text`` escaped, in order, in pieces of at most ``size`` characters each: for
    text that must arrive whole over several blocks. Cut on the raw side, so no piece
    splits an entity."""
    pieces: list[str] = []
    piece: list[str] = []
    length = 0
    for character in text:
        shown = _escape(character)
        if length + len(shown) > size:
            pieces.append("".join(piece))
            piece, length = [], 0
        piece.append(shown)
        length += len(shown)
    pieces.append("".join(piece))
    return pieces


NAMING_SITES: ContextVar[bool] = ContextVar("naming_sites", default=False)
"""Whether what is drawn now names the site of each request: where the bot serves
several sites. Listeners get it from ``BotParts``; what the notifier sends, from the
notifier. A bot of one site shows nothing of sites."""


def site_suffix(site: str) -> str:
    """`` (eu)`` after a connection's name, where sites are named; else nothing."""
    return f" ({escape(site)})" if NAMING_SITES.get() else ""


def connection_name(request: ConnectionRequest) -> str:
    """The request's connection name, escaped, followed by its site where sites are
    named: names are unique per site, so two sites' ``acme_to_partner`` must not look
    alike."""
    return escape(request.fields.connection_name) + site_suffix(request.fields.site)


def plain(text: str, limit: int = 3000) -> Json:
    """A plain_text object, cut to Slack's limit for where it goes."""
    return {"type": "plain_text", "text": text[:limit], "emoji": True}


def literal(text: str) -> Json:
    """A plain_text object shown exactly as given: emoji codes (``:tada:``) stay words."""
    return {"type": "plain_text", "text": text, "emoji": False}


def mrkdwn(text: str) -> Json:
    """A mrkdwn object, verbatim: Slack then turns no bare URL, channel name or @word
    into a link or a mention. Every one the bot sends may carry user text; its own
    mentions are written ``<@U…>``, which verbatim leaves working."""
    return {"type": "mrkdwn", "text": text[:3000], "verbatim": True}


def section(text: str) -> Json:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> Json:
    return {"type": "context", "elements": [mrkdwn(text)]}


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def mention_any(ids: tuple[str, ...]) -> str:
    """People and user groups as Slack mentions them, joined with "or"."""
    said = [f"<!subteam^{i}>" if i.startswith("S") else mention(i) for i in ids]
    return " or ".join(said) if len(said) <= 2 else ", ".join(said[:-1]) + " or " + said[-1]


def age(created: datetime, now: datetime) -> str:
    seconds = max(0, int((now - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
