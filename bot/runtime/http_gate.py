"""The door of HTTP mode: only small, signed, well-formed requests reach Bolt.

Bolt logs the whole body of a request whose signature fails, at INFO: an attacker's
megabytes, or a genuine request's ``response_url`` and pasted code when a clock is
skewed or a secret was rotated. It parses before it verifies, so a malformed unsigned
body is a 500 and an ERROR line. This middleware answers first: a body far larger than
any Slack payload is refused before it is read (413), a missing, stale or wrong
signature is refused with 401, and a signed body that is not what Slack sends with 400.
Slack's unsigned certificate check (``ssl_check=1``) gets its 200, as Bolt gives it.
Each refusal is one log line (path, length, reason), never the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024
"""Far above any Slack payload (a view is at most 250 kB), far below a flood's."""
MAX_SKEW = 5 * 60 - 10
"""Slack's rule (5 minutes) with a margin: Bolt checks again a moment later, and a
request it refused would be logged whole."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def slack_gate(
    signing_secret: str, path: str, *, clock: Callable[[], float] = time.time
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware guarding ``POST path`` (Slack's endpoint); other routes
    (the probes) pass untouched."""
    secret = signing_secret.encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != path:
            return await handler(request)
        length = request.content_length
        if length is None or length > MAX_BODY_BYTES:
            return _refuse(request, 413 if length else 411, "too_large" if length else "no_length")
        body = await request.read()
        if _ssl_check(request.content_type, body):  # Slack's certificate check, unsigned
            return web.Response(status=200)
        reason = _signature_problem(secret, request, body, clock())
        if reason is not None:
            return _refuse(request, 401, reason)
        if not _well_formed(request.content_type, body):
            return _refuse(request, 400, "malformed")
        return await handler(request)

    return guard


def _signature_problem(secret: bytes, request: web.Request, body: bytes, now: float) -> str | None:
    """Why the request is not Slack's, or None. Works on bytes throughout: a hostile
    header or body must be refused, not raise."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return "unsigned"
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(now - int(timestamp)) > MAX_SKEW:
        return "stale_timestamp"
    digest = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    expected = b"v0=" + digest.hexdigest().encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return "bad_signature"
    return None


def _ssl_check(content_type: str, body: bytes) -> bool:
    if content_type != "application/x-www-form-urlencoded" or len(body) > 200:
        return False
    return urllib.parse.parse_qs(body.decode("ascii", "replace")).get("ssl_check") == ["1"]


def _well_formed(content_type: str, body: bytes) -> bool:
    """Slack sends JSON (events) or a form (commands; interactivity, whose ``payload``
    field is JSON)."""
    try:
        if content_type == "application/json":
            return isinstance(json.loads(body), dict)
        if content_type == "application/x-www-form-urlencoded":
            form = urllib.parse.parse_qs(body.decode(), strict_parsing=bool(body))
            return "payload" not in form or isinstance(json.loads(form["payload"][0]), dict)
    except (ValueError, UnicodeDecodeError):
        return False
    return False


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    log.warning(
        "slack_request_refused path=%s length=%s reason=%s",
        request.path,
        request.content_length,
        reason,
    )
    return web.json_response({"error": reason}, status=status)
