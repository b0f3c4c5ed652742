"""The door of HTTP mode: only small, signed, well-formed requests reach Bolt.

Bolt logs the whole body of a request whose signature fails, at INFO: an attacker's
megabytes, or a genuine request's ``response_url`` and pasted code when a clock is
skewed or a secret was rotated. It parses before it verifies, so a malformed unsigned
body is a 500 and an ERROR line. This middleware answers first: a body far larger than
any Slack payload is refused before it is read (413), a missing, stale or wrong
signature is refused with 401, and a signed body that is not what Slack sends with 400.
Each refusal is one log line (path, length, reason), never the body.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024
"""Far above any Slack payload (a view is at most 250 kB), far below a flood's."""
MAX_SKEW_SECONDS = 5 * 60
"""Slack's own rule: a request signed longer ago than this may be a replay."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def slack_gate(
    signing_secret: str, path: str, *, clock: Callable[[], float] = time.time
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware guarding ``POST path`` (Slack's endpoint); other routes
    (the probes) pass untouched."""
    verifier = SignatureVerifier(signing_secret)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != path:
            return await handler(request)
        length = request.content_length
        if length is None or length > MAX_BODY_BYTES:
            return _refuse(request, 413 if length else 411, "too_large" if length else "no_length")
        body = await request.read()
        reason = _signature_problem(verifier, request, body, clock())
        if reason is not None:
            return _refuse(request, 401, reason)
        if not _well_formed(request.content_type, body):
            return _refuse(request, 400, "malformed")
        return await handler(request)

    return guard


def _signature_problem(
    verifier: SignatureVerifier, request: web.Request, body: bytes, now: float
) -> str | None:
    timestamp = request.headers.get("X-Slack-Request-Timestamp")
    signature = request.headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return "unsigned"
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return "stale_timestamp"
    expected = verifier.generate_signature(timestamp=timestamp, body=body)
    if expected is None or not hmac.compare_digest(expected, signature):
        return "bad_signature"
    return None


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
