"""Hostile traffic in HTTP mode: refused early, in one log line each, never logged whole."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse

import pytest

from bot.log import configure_logging
from bot.runtime.http_gate import MAX_BODY_BYTES
from handlers.ids import Action, Block, View
from tests.e2e.harness import ALICE, BOT_TOKEN, CAROL, JIRA_TOKEN, Harness


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
