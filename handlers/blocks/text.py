"""The small pieces every message is made of, and the escaping of user text.

Everything a person typed goes through ``escape`` before it enters mrkdwn, so a
description cannot ping ``@channel``, mention people or forge links, and every mrkdwn
object is ``verbatim``, so a bare URL in it stays text.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

from bot.approvals.model import ConnectionRequest

Json = dict[str, Any]


MAX_MESSAGE_BLOCKS = 50


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
