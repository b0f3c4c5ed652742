"""The log filter that keeps secrets out of every line."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from bot.exalate.auth import BasicAuth, BearerToken
from bot.log import REDACTED, JsonLines, RedactSecrets, remember_secret
from bot.site_config import SiteConfig


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

    def test_an_exception_keeps_its_traceback_redacted(self) -> None:
        """An unexpected error keeps its stack (where it happened is what the reader
        needs), with secrets redacted there as in the message; formatters print it."""

        def fail_deep_down() -> None:
            raise RuntimeError("token xoxb-9-leak")

        try:
            fail_deep_down()
        except RuntimeError:
            record = logging.LogRecord(
                "t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
            )
        RedactSecrets().filter(record)
        assert record.exc_info is None
        assert "xoxb-9-leak" not in record.getMessage()
        assert "RuntimeError" in record.getMessage()
        assert record.exc_text is not None
        assert "fail_deep_down" in record.exc_text
        assert "xoxb-9-leak" not in record.exc_text
        plain = logging.Formatter("%(message)s").format(record)
        assert "Traceback (most recent call last)" in plain
        line = json.loads(JsonLines().format(record))
        assert "fail_deep_down" in line["traceback"]

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
        line = json.loads(
            JsonLines().format(_record("serving port=%s after=%s by=%s", 13000, 0.25, "U1"))
        )
        assert line["event"] == "serving"
        assert (line["port"], line["after"], line["by"], line["level"]) == (
            13000,
            0.25,
            "U1",
            "info",
        )
        assert line["message"] == "serving port=13000 after=0.25 by=U1"

    def test_free_text_is_kept_as_a_message(self) -> None:
        """Lines from libraries that are not events keep their text."""
        line = json.loads(JsonLines().format(_record("Something Else happened")))
        assert line["message"] == "Something Else happened"
        assert line["event"] == "log"  # every line has both, whoever wrote it

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


PASSWORD = "s3cret-Pass"


def _basic_site(username: str = "jira-bot", password: str = PASSWORD) -> SiteConfig:
    return SiteConfig(
        name="eu",
        jira_url="https://jira.example",
        credentials=BasicAuth(username, password),
        credentials_from="JIRA_PASSWORD_EU",
    )


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger at DEBUG whose handler redacts as the bot's does, with a basic-auth
    site's and a token site's secrets; the second item is what it wrote."""
    token_site = SiteConfig("us", "https://j.example", BearerToken("pat-0123456789"))
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactSecrets([*_basic_site().secrets(), *token_site.secrets()]))
    logger = logging.getLogger("test_log.basic")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, out
    logger.handlers.clear()


class TestBasicAuth:
    HEADER = BasicAuth("jira-bot", "s3cret-Pass").header()

    def test_site_secrets_are_what_the_client_sends(self) -> None:
        """A basic-auth site names the password and the header's base64, exactly the
        strings the client's credentials name; a token site its token."""
        assert set(_basic_site().secrets()) == set(BasicAuth("jira-bot", "s3cret-Pass").secrets())
        token_site = SiteConfig("us", "https://j.example", BearerToken("t-123456"))
        assert token_site.secrets() == list(BearerToken("t-123456").secrets())

    def test_header_logged_at_debug_and_info_is_redacted(
        self, logged: tuple[logging.Logger, io.StringIO]
    ) -> None:
        logger, out = logged
        logger.debug("request headers %s", {"Authorization": self.HEADER})
        logger.info("Authorization: %s", self.HEADER)
        encoded = self.HEADER.removeprefix("Basic ")
        logger.info("echoed back: %s", encoded)  # no scheme: redacted as a known value
        text = out.getvalue()
        assert len(text.splitlines()) == 3
        assert encoded not in text
        assert "s3cret-Pass" not in text

    def test_header_in_an_exception_is_redacted(
        self, logged: tuple[logging.Logger, io.StringIO]
    ) -> None:
        logger, out = logged
        try:
            raise RuntimeError(f"proxy refused: Authorization: {self.HEADER}; password s3cret-Pass")
        except RuntimeError:
            logger.exception("call_failed")
        text = out.getvalue()
        assert "RuntimeError" in text
        assert self.HEADER.removeprefix("Basic ") not in text
        assert "s3cret-Pass" not in text

    def test_unknown_basic_credentials_are_redacted_by_shape(self) -> None:
        """A header the filter was not told about, however short its pair or escaped."""
        for pair in ("someone:other-password", "k:b", "a:b"):
            header = BasicAuth(*pair.split(":")).header()
            encoded = header.removeprefix("Basic ")
            for line in (f"Authorization: {header}", f"'{header.upper()[:5]}{header[5:]}'"):
                redacted = RedactSecrets().redact(line)
                assert encoded not in redacted, line
                assert "Basic " in redacted or "BASIC " in redacted
        escaped = RedactSecrets().redact('"Authorization": "Basic dXNl\\/cjpwYXNz"')
        assert "dXNl" not in escaped

    def test_prose_after_basic_is_kept(self) -> None:
        """Operators' messages say "Basic Information" and "basic auth"; they stay."""
        for line in (
            "SLACK_APP_TOKEN is missing, from Basic Information → App-Level Tokens",
            "[sites.half] basic auth needs both username and password_env",
            "site_loaded kind=basic user=jira-bot",
        ):
            assert RedactSecrets().redact(line) == line

    def test_bearer_token_is_still_redacted(
        self, logged: tuple[logging.Logger, io.StringIO]
    ) -> None:
        logger, out = logged
        logger.debug("Authorization: Bearer pat-0123456789")
        logger.info("token %s", "pat-0123456789")
        logger.info("Authorization: %s", BearerToken("unknown-token").header())
        text = out.getvalue()
        assert "pat-0123456789" not in text
        assert "unknown-token" not in text


class TestShortSecrets:
    def test_short_password_is_redacted_as_a_secret_fields_value(self) -> None:
        """A 4-character password is not looked for in free text, but the value of a
        field named like a secret is redacted whatever it is."""
        redactor = RedactSecrets(_basic_site(password="abcd").secrets())
        for line in (
            'body {"username": "jira-bot", "password": "abcd"}',
            "{'password': 'abcd'}",
            "form os_username=jira-bot&os_password=abcd&login=Log+In",
            "login password=abcd",
        ):
            redacted = redactor.redact(line)
            assert "abcd" not in redacted, line
            assert REDACTED in redacted

    def test_short_secrets_do_not_garble_free_text(self) -> None:
        """A 1-character token once garbled every Jira error message."""
        redactor = RedactSecrets(["a", "abcd"])
        line = "jira_answered status=400 message=abcd is not a valid project"
        assert redactor.redact(line) == line

    def test_base64_of_a_short_pair_is_redacted(self) -> None:
        """The header's base64 reaches the known-value minimum from 4 bytes ("u:pw")."""
        site = _basic_site(username="u", password="pw")
        encoded = BasicAuth("u", "pw").header().removeprefix("Basic ")
        assert encoded in site.secrets()
        assert encoded not in RedactSecrets(site.secrets()).redact(f"echo {encoded}")
