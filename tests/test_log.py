"""The log filter that keeps secrets out of every line."""

from __future__ import annotations

import json
import logging

from bot.log import REDACTED, JsonLines, RedactSecrets, remember_secret


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, message, args, None)


class TestRedactSecrets:
    def test_known_secret_values_are_redacted(self) -> None:
        """A configured secret is replaced wherever it appears, args included."""
        record = _record("calling with %s", "jira-pat-123456")
        RedactSecrets(["jira-pat-123456"]).filter(record)
        assert record.getMessage() == f"calling with {REDACTED}"

    def test_secret_shapes_are_redacted(self) -> None:
        """Slack tokens, bearer headers and response URLs are caught by shape."""
        record = _record(
            "xoxb-1-abc xapp-1-A-2 Authorization: Bearer abc.def "
            "https://hooks.slack.com/actions/T1/2/xyz"
        )
        RedactSecrets().filter(record)
        message = record.getMessage()
        for secret in ("xoxb-1-abc", "xapp-1-A-2", "abc.def", "hooks.slack.com"):
            assert secret not in message

    def test_exception_text_is_redacted_and_traceback_dropped(self) -> None:
        """An exception's message is summarised, redacted, without the traceback."""
        try:
            raise RuntimeError("token xoxb-9-leak")
        except RuntimeError as error:
            record = logging.LogRecord(
                "t", logging.ERROR, __file__, 1, "failed", None, (RuntimeError, error, None)
            )
        RedactSecrets().filter(record)
        assert record.exc_info is None
        assert "xoxb-9-leak" not in record.getMessage()
        assert "RuntimeError" in record.getMessage()

    def test_codes_met_at_run_time_are_redacted(self) -> None:
        """A code remembered while running is redacted by filters made before."""
        redactor = RedactSecrets()
        remember_secret("INVITE-CODE-0123456789")
        record = _record("dump %s", {"invitationCode": "INVITE-CODE-0123456789"})
        redactor.filter(record)
        assert "INVITE-CODE" not in record.getMessage()


class TestJsonLines:
    def test_event_and_pairs_become_fields(self) -> None:
        """`event k=v` lines turn into searchable JSON fields."""
        line = json.loads(JsonLines().format(_record("request_approved id=%s by=%s", 7, "U1")))
        assert line["event"] == "request_approved"
        assert (line["id"], line["by"], line["level"]) == ("7", "U1", "info")

    def test_free_text_is_kept_as_a_message(self) -> None:
        """Lines from libraries that are not events keep their text."""
        line = json.loads(JsonLines().format(_record("Something Else happened")))
        assert line["message"] == "Something Else happened"
        assert "event" not in line

    def test_text_beside_the_pairs_is_kept_whole(self) -> None:
        """Bolt's "submit_request didn't call ack()" once became just the event
        ``submit_request``; a line with words besides its pairs keeps its whole text."""
        bolt = json.loads(JsonLines().format(_record("submit_request didn't call ack()")))
        assert bolt["message"] == "submit_request didn't call ack()"
        ours = json.loads(JsonLines().format(_record("poll_failing kind=%s; backing off", "X")))
        assert (ours["event"], ours["kind"]) == ("poll_failing", "X")
        assert ours["message"] == "poll_failing kind=X; backing off"


class TestUrlEncoded:
    def test_form_encoded_response_urls_and_secrets_are_redacted(self) -> None:
        """A body logged as a form carries its response_url and codes URL-encoded."""
        remember_secret("Q29kZQ+/=abc")
        record = _record(
            "body=response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F2%2Fxyz"
            "&code=Q29kZQ%2B%2F%3Dabc&other=Q29kZQ+%2F%3Dabc&token=jira-pat-123456"
        )
        RedactSecrets(["jira-pat-123456"]).filter(record)
        message = record.getMessage()
        for leaked in ("hooks.slack.com", "Q29kZQ", "jira-pat"):
            assert leaked not in message

    def test_json_escaped_slashes_are_redacted(self) -> None:
        """Slack's JSON writes ``/`` as ``\\/``: a body logged as is still leaks nothing."""
        remember_secret("Q29kZQ+/=json")
        record = _record(
            '{"response_url": "https:\\/\\/hooks.slack.com\\/actions\\/T1\\/2", '
            '"code": "Q29kZQ+\\/=json"}'
        )
        RedactSecrets().filter(record)
        for leaked in ("hooks.slack.com", "Q29kZQ"):
            assert leaked not in record.getMessage()
