"""The door of HTTP mode: only small, signed, well-formed requests reach Bolt.

Bolt logs the whole body of a request whose signature fails, at INFO: an attacker's
megabytes, or a genuine request's ``response_url`` and pasted code when a clock is
skewed or a secret was rotated. It parses before it verifies, so a malformed unsigned
body is a 500 and an ERROR line. This middleware answers first: a body far larger than
any Slack payload is refused before it is read (413), one that does not arrive within
``BODY_SECONDS`` is cut off (408), a repeated signature or timestamp is refused (400:
Bolt would read the last where this reads the first), a missing, stale or wrong
signature with 401, and a signed body that is not what Slack sends (not UTF-8, not JSON
or a form, a payload of another shape: ``bot.runtime.slack_shapes``) with 400. The body
is parsed as Bolt parses it, so what is checked is what the listeners get.
Slack's unsigned certificate check (``ssl_check=1``) gets its 200, as Bolt gives it.
Each refusal is one log line (path, length, reason, and for a shape the payload's type
and the field), never the body and never a header's value; bodies cut short or too
slow, which a flood of slow clients makes by the hundred, are counted in one line a
minute instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.request.internals import parse_body

from bot.runtime.http_limits import BODY_SECONDS, Throttled
from bot.runtime.slack_shapes import problem

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024
"""Far above any Slack payload (a view is at most 250 kB), far below a flood's."""
MAX_SKEW = 5 * 60 - 10
"""Slack's rule (5 minutes) with a margin: Bolt checks again a moment later, and a
request it refused would be logged whole."""
TIMESTAMP_DIGITS = 12
"""Seconds since 1970 have 10 digits until the year 2286; more is not a timestamp (and
past 4,300 digits Python refuses to read the number at all)."""
SINGLE_HEADERS = ("X-Slack-Signature", "X-Slack-Request-Timestamp")
"""Headers the gate and Bolt both read: the gate takes the first of a repeated one, Bolt
the last. (aiohttp itself refuses a repeated Content-Type or Content-Length.)"""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def slack_gate(
    signing_secret: str, path: str, *, clock: Callable[[], float] = time.time
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware guarding ``POST path`` (Slack's endpoint); other routes
    (the probes) pass untouched."""
    secret = signing_secret.encode()
    broken = Throttled("slack_request_body_lost", logger=log)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != path:
            return await handler(request)
        refusal = _header_problem(request)
        if refusal is not None:
            return _refuse(path, request, *refusal)
        try:
            async with asyncio.timeout(BODY_SECONDS):
                body = await request.read()
        except TimeoutError:
            broken.note("reason=too_slow")
            response = web.json_response({"error": "too_slow"}, status=408)
            response.force_close()
            return response
        except (ConnectionError, web.RequestPayloadError):
            broken.note("reason=cut_short")  # nobody is left to answer
            return web.Response(status=400)
        if _ssl_check(request.content_type, body):  # Slack's certificate check, unsigned
            return web.Response(status=200)
        reason = _signature_problem(secret, request, body, clock())
        if reason is not None:
            return _refuse(path, request, 401, reason)
        payload = _as_bolt_parses(request, body)
        if payload is None:
            return _refuse(path, request, 400, "malformed")
        wrong = problem(payload)
        if wrong is not None:
            kind, field = wrong
            return _refuse(path, request, 400, "unexpected_shape", f" kind={kind} field={field}")
        return await handler(request)

    return guard


def _header_problem(request: web.Request) -> tuple[int, str, str] | None:
    """(status, reason, detail) for headers refused before the body is read."""
    for name in SINGLE_HEADERS:
        if len(request.headers.getall(name, [])) > 1:
            return 400, "repeated_header", f" header={name}"
    length = request.content_length
    if length is None:
        return 411, "no_length", ""
    if length > MAX_BODY_BYTES:
        return 413, "too_large", ""
    return None


def _signature_problem(secret: bytes, request: web.Request, body: bytes, now: float) -> str | None:
    """Why the request is not Slack's, or None. Works on bytes throughout: a hostile
    header or body must be refused, not raise."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return "unsigned"
    if not _seconds(timestamp) or abs(now - int(timestamp)) > MAX_SKEW:
        return "stale_timestamp"
    digest = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    expected = b"v0=" + digest.hexdigest().encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return "bad_signature"
    return None


def _seconds(timestamp: str) -> bool:
    """Whether ``timestamp`` is a number of seconds ``int`` reads quickly."""
    return timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= TIMESTAMP_DIGITS


def _ssl_check(content_type: str, body: bytes) -> bool:
    if content_type != "application/x-www-form-urlencoded" or len(body) > 200:
        return False
    return urllib.parse.parse_qs(body.decode("ascii", "replace")).get("ssl_check") == ["1"]


def _as_bolt_parses(request: web.Request, body: bytes) -> dict[str, Any] | None:
    """The payload as Bolt will read it (its own parser, on the text it will decode), or
    None where Bolt would fail or read something that is not an object. Slack sends
    UTF-8: JSON (events) or a form (commands; interactivity, whose ``payload`` field is
    JSON)."""
    if (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        return None
    content_type = request.headers.get("Content-Type")
    try:
        text = body.decode("utf-8")
        parsed = parse_body(text, content_type.split(";")[0] if content_type else None)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError too
        return None
    return parsed if isinstance(parsed, dict) else None


def _refuse(
    path: str, request: web.Request, status: int, reason: str, detail: str = ""
) -> web.Response:
    """One line in the bot's words (the path guarded, not the one sent), and an answer
    that repeats nothing of the request."""
    log.warning(
        "slack_request_refused path=%s length=%s reason=%s%s",
        path,
        request.content_length,
        reason,
        detail,
    )
    return web.json_response({"error": reason}, status=status)
