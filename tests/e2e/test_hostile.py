"""Hostile traffic in HTTP mode: refused early, in one log line each, never logged whole."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDict

from bot.config import Settings
from bot.log import configure_logging
from bot.runtime.http_gate import MAX_BODY_BYTES
from handlers.ids import Action, Block, View
from tests.e2e.harness import (
    ALICE,
    BOT_TOKEN,
    CAROL,
    JIRA_TOKEN,
    SIGNING_SECRET,
    Harness,
    http_mode,
    signed_headers,
)


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "slack_request_refused" in r.getMessage()]


class TestUnsignedFlood:
    async def test_unsigned_posts_are_refused_in_one_short_line_each(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Fifty unsigned 400 kB posts: fifty 401s and fifty short lines, no body logged."""
        caplog.set_level(logging.INFO)
        body = b"payload=" + b"A" * (400 * 1024)
        for _ in range(50):
            async with harness.http.post(
                harness.url,
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ) as response:
                assert response.status == 401
        assert len(_refusals(caplog)) == 50
        assert all("reason=unsigned" in line for line in _refusals(caplog))
        assert len(caplog.text) < 50 * 300
        assert "AAAAAAAAAA" not in caplog.text

    async def test_a_body_far_above_any_slack_payload_is_refused_unread(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        body = b"x" * (MAX_BODY_BYTES + 1)
        reply = await harness.post(body, "application/x-www-form-urlencoded")
        assert reply.status == 413
        assert "reason=too_large" in caplog.text

    async def test_malformed_payloads_are_400_or_401_never_500(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Unsigned ``payload=%7Bnot``: 401. Signed: 400. No ERROR line either way."""
        caplog.set_level(logging.INFO)
        body = b"payload=%7Bnot"
        async with harness.http.post(
            harness.url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        ) as response:
            assert response.status == 401
        assert (await harness.post(body, "application/x-www-form-urlencoded")).status == 400
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    @pytest.mark.parametrize(
        ("body", "headers"),
        [
            (b"\xff\xfe not utf-8", {"X-Slack-Signature": "v0=00"}),
            (b"payload=%7B%7D", {"X-Slack-Signature": "v0=\u00e9t\u00e9"}),
            (b"payload=%7B%7D", {"X-Slack-Request-Timestamp": "\u00b2"}),
        ],
    )
    async def test_hostile_headers_and_bodies_are_refused_not_crashed_on(
        self,
        harness: Harness,
        caplog: pytest.LogCaptureFixture,
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        """Non-UTF-8 bodies, non-ASCII signatures, digits that are not ASCII: 401."""
        caplog.set_level(logging.INFO)
        sent = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": "v0=" + "0" * 64,
        } | headers
        async with harness.http.post(
            harness.url,
            data=body,
            headers={k: v.encode().decode("latin-1") for k, v in sent.items()},
        ) as response:
            assert response.status == 401
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    async def test_slacks_certificate_check_is_answered_unsigned(self, harness: Harness) -> None:
        async with harness.http.post(
            harness.url,
            data=b"ssl_check=1&token=legacy",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response:
            assert response.status == 200


class TestGenuineButRefused:
    async def test_a_skewed_clock_leaks_neither_response_url_nor_code(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A real command and a Paste-code submission signed ten minutes ago: refused,
        and the log holds neither the response_url (raw or URL-encoded) nor the code."""
        caplog.set_level(logging.DEBUG)
        stale = int(time.time()) - 600
        fields = harness.command_fields("status")
        reply = await harness.post_form(fields, timestamp=stale)
        state = {Block.CODE.value: {"input": {"type": "plain_text_input", "value": "Q29kZQ+/="}}}
        payload = json.dumps(harness._submission(CAROL, View.PASTE.value, "1", state))
        pasted = await harness.post_form({"payload": payload}, timestamp=stale)
        assert (reply.status, pasted.status) == (401, 401)
        url = fields["response_url"]
        for secret in (url, urllib.parse.quote(url, safe=""), "Q29kZQ", "Q29kZQ%2B%2F%3D"):
            assert secret not in caplog.text
        assert "reason=stale_timestamp" in caplog.text


class TestDebugLogging:
    async def test_debug_logs_carry_no_response_url_token_or_code(
        self, harness: Harness, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """At LOG_LEVEL=DEBUG, what the bot writes (stderr) holds no secret and no
        library's DEBUG lines with bodies or SQL parameters."""
        capsys.readouterr()
        configure_logging("DEBUG", [BOT_TOKEN, JIRA_TOKEN], json_lines=True)
        command = harness.command_fields("status")
        await harness.post_form(command)
        request_id = await harness.invited()
        await harness.click(Action.SHOW_CODE, request_id, ALICE)
        await harness.settle()
        code = str(next(iter(harness.simulator.connections.values()))["invitationCode"])
        written = capsys.readouterr().err
        lines = [json.loads(line) for line in written.splitlines() if line.startswith("{")]
        assert lines, "nothing was logged, so the scan proves nothing"
        for secret in (BOT_TOKEN, JIRA_TOKEN, code, "/response/", "response%2F"):
            assert secret not in written
        debug_from = {line["logger"].split(".")[0] for line in lines if line["level"] == "debug"}
        assert debug_from <= {"bot", "handlers", "storage", "asyncio"}


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def _pasted_code_body(harness: Harness, code: str) -> bytes:
    """A Paste invitation code submission: what must never reach a log."""
    state = {Block.CODE.value: {"input": {"type": "plain_text_input", "value": code}}}
    payload = json.dumps(harness._submission(CAROL, View.PASTE.value, "1", state))
    return urllib.parse.urlencode({"payload": payload}).encode()


class TestRepeatedHeaders:
    """Issue: a repeated X-Slack-Signature passed the gate, which checked the first, and
    failed Bolt, which checked the last and logged the whole body (a pasted code) at INFO."""

    @pytest.mark.parametrize("name", ["X-Slack-Signature", "X-Slack-Request-Timestamp"])
    async def test_a_repeated_signing_header_is_refused_before_bolt(
        self, harness: Harness, caplog: pytest.LogCaptureFixture, name: str
    ) -> None:
        caplog.set_level(logging.DEBUG)
        body = _pasted_code_body(harness, "Q29kZQ+/=")
        signed = signed_headers(body, content_type="application/x-www-form-urlencoded")
        repeated = {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "1"}
        headers = CIMultiDict(signed)
        headers.add(name, repeated[name])  # the genuine one first, as the gate read it
        async with harness.http.post(harness.url, data=body, headers=headers) as response:
            assert response.status == 400
            assert await response.json() == {"error": "repeated_header"}
        assert f"reason=repeated_header header={name}" in caplog.text
        for secret in ("Q29kZQ", "Q29kZQ%2B%2F%3D", "/response/"):
            assert secret not in caplog.text
        assert harness.slack.calls_to("views.update") == []
        assert not _errors(caplog)


class TestNumbersInHeaders:
    @pytest.mark.parametrize("digits", [13, 4300, 5000])
    async def test_a_timestamp_of_many_digits_is_a_stale_one(
        self, harness: Harness, caplog: pytest.LogCaptureFixture, digits: int
    ) -> None:
        """Issue: 4,300 digits made ``int()`` raise and the gate answer 500."""
        caplog.set_level(logging.INFO)
        stamp = "9" * digits
        body = urllib.parse.urlencode(harness.command_fields("status")).encode()
        headers = signed_headers(body, content_type="application/x-www-form-urlencoded")
        headers["X-Slack-Request-Timestamp"] = stamp
        async with harness.http.post(harness.url, data=body, headers=headers) as response:
            assert response.status == 401
            assert await response.json() == {"error": "stale_timestamp"}
        assert "9999999999999" not in caplog.text
        assert not _errors(caplog)


def _json_body(payload: object) -> tuple[bytes, str]:
    return json.dumps(payload).encode(), "application/json"


def _form_payload(payload: object) -> tuple[bytes, str]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return body, "application/x-www-form-urlencoded"


SECRET_VALUE = "SeCrEt-VaLuE-42"
"""Put in the broken field where a value goes: it must appear in no log line."""


def _click(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "type": "block_actions",
        "user": {"id": ALICE},
        "trigger_id": "1.2.3",
        "response_url": "http://127.0.0.1:9/response/x",
        "actions": [{"type": "button", "action_id": Action.APPROVE.value, "value": "1:ab"}],
    }
    return payload | changes


def _submission(**view_changes: object) -> dict[str, object]:
    view: dict[str, object] = {
        "id": "V1",
        "type": "modal",
        "callback_id": View.REJECT.value,
        "private_metadata": "1:0123456789abcdef",
        "state": {"values": {"reason": {"input": {"type": "plain_text_input", "value": "x"}}}},
    }
    return {"type": "view_submission", "user": {"id": CAROL}, "view": view | view_changes}


SHAPES = {
    "click with no action": (_form_payload(_click(actions=[])), "block_actions actions.0"),
    "click by a user string": (_form_payload(_click(user=SECRET_VALUE)), "block_actions user"),
    "action id not a string": (
        _form_payload(_click(actions=[{"action_id": 7, "value": SECRET_VALUE}])),
        "block_actions actions.0.action_id",
    ),
    "event of null": (
        _json_body({"type": "event_callback", "event": None, "team_id": SECRET_VALUE}),
        "event_callback event",
    ),
    "home opened by nobody": (
        _json_body({"type": "event_callback", "event": {"type": "app_home_opened"}}),
        "event_callback event.user",
    ),
    "form values in a list": (
        _form_payload(_submission(state={"values": [SECRET_VALUE]})),
        "view_submission view.state.values",
    ),
    "an input of the wrong kind": (
        _form_payload(_submission(state={"values": {"reason": {"input": [SECRET_VALUE]}}})),
        "view_submission view.state.values.*.*",
    ),
    "metadata a number": (
        _form_payload(_submission(private_metadata=42)),
        "view_submission view.private_metadata",
    ),
    "no view": (
        _form_payload({"type": "view_submission", "user": {"id": CAROL}}),
        "view_submission view",
    ),
    "suggestion typed as a number": (
        _form_payload(
            {
                "type": "block_suggestion",
                "user": {"id": ALICE},
                "action_id": Action.PROJECT.value,
                "value": 42,
            }
        ),
        "block_suggestion value",
    ),
    "command by nobody": (
        _json_body({"command": "/exalate", "text": SECRET_VALUE, "user_id": None}),
        "command user_id",
    ),
    "response urls of null": (
        _form_payload(_submission() | {"response_urls": None, "token": SECRET_VALUE}),
        "view_submission response_urls",
    ),
    "a shortcut, which the bot has none of": (
        _form_payload({"type": "shortcut", "callback_id": SECRET_VALUE}),
        "unknown type",
    ),
}


class TestShapesSlackNeverSends:
    """Issue: signed payloads of shapes Slack never sends ended in 500s and ERROR lines
    with tracebacks: the gate checked only that the body was a JSON object."""

    @pytest.mark.parametrize(("sent", "refused"), SHAPES.values(), ids=SHAPES.keys())
    async def test_a_signed_payload_of_another_shape_is_a_400_in_one_line(
        self,
        harness: Harness,
        caplog: pytest.LogCaptureFixture,
        sent: tuple[bytes, str],
        refused: str,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        kind, field = refused.split()
        assert (await harness.post(*sent)).status == 400
        (line,) = _refusals(caplog)
        assert line.endswith(f"reason=unexpected_shape kind={kind} field={field}")
        assert SECRET_VALUE not in caplog.text
        assert not _errors(caplog)

    @pytest.mark.parametrize(
        ("body", "content_type"),
        [
            (b"[1, 2]", "application/json"),
            (b"[" * 100_000 + b"]" * 100_000, "application/json"),
            (b'{"type": "event_callback"}', "application/json; charset=latin-1"),
            (b"payload=" + b"%7B" * 20, "application/x-www-form-urlencoded"),
            (b'{"text": "\xff"}', "application/json"),
        ],
        ids=["a list", "nested too deep", "not utf-8 by its charset", "broken json", "bad utf-8"],
    )
    async def test_a_signed_body_bolt_could_not_read_is_a_400(
        self,
        harness: Harness,
        caplog: pytest.LogCaptureFixture,
        body: bytes,
        content_type: str,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        stamp = str(int(time.time()))
        digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + body, "sha256")
        headers = {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest.hexdigest()}",  # over bytes, UTF-8 or not
            "Content-Type": content_type,
        }
        async with harness.http.post(harness.url, data=body, headers=headers) as response:
            assert response.status == 400
        assert "reason=malformed" in caplog.text
        assert not _errors(caplog)

    async def test_an_event_bolt_has_no_listener_for_still_passes(self, harness: Harness) -> None:
        """Slack sends events of any type the app subscribes to: their shape is Bolt's
        business, not a refusal (Bolt acknowledges them)."""
        event = {"type": "tokens_revoked", "tokens": {"bot": ["U0BOT"]}}
        reply = await harness.event(event)
        assert reply.status in (200, 404)


@pytest.fixture(name="served")
async def _served(settings: Settings) -> AsyncIterator[int]:
    async with http_mode(settings) as port:
        yield port


async def _raw(port: int, sent: bytes) -> bytes:
    """What the bot answers ``sent`` on a connection of its own, until it closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


MALFORMED = [
    b"SECRET-TOKEN-1 /slack/events HTTP/1.1\r\nHost: bot\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nX-Bad\x01: SECRET-TOKEN-2\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nContent-Length: " + b"9" * 4300 + b"\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nSECRET",
    b"GET /SECRET-TOKEN-3" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n" + b"X-SECRET-TOKEN-4: 1\r\n" * 60 + b"\r\n",
]


@pytest.mark.parametrize("backend", ["sqlite"])
class TestMalformedHttp:
    async def test_unparseable_requests_are_counted_in_one_line_quoting_nothing(
        self, served: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Issue: each request aiohttp could not parse was an ERROR line with a traceback
        quoting the bytes sent (a header, a request line). Now: a 400 each, and one line
        a minute saying how many and of which kind."""
        caplog.set_level(logging.DEBUG)
        for _ in range(5):
            for sent in MALFORMED:
                assert (await _raw(served, sent)).startswith(b"HTTP/1.")
        assert not _errors(caplog)
        assert "SECRET" not in caplog.text
        assert "9999999999" not in caplog.text
        (line,) = [r.getMessage() for r in caplog.records if "http_malformed" in r.getMessage()]
        assert line.startswith("http_malformed count=1 kind=")
