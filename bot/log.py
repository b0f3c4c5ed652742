"""Logging set-up, with a filter that keeps secrets out of every log line.

Log calls in this code base never pass a secret. The filter is the second line of
defence: it redacts Slack tokens, the Jira credentials (a token, or a password and its
Basic header), ``Bearer``/``Basic`` header values, the values of fields named like a
secret (``password=…``, ``"token": "…"``) and Slack response URLs wherever they might
appear (a library's debug line, an exception from a dependency).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import sys
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
SECRET_MIN = 6
"""Known secrets shorter than this are not looked for in free text (see RedactSecrets)."""
_EVENT = re.compile(r"[a-z][a-z0-9_]*")
_PAIR = re.compile(r"(\w+)=([^\s;,]+)")
_PATTERNS = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]+"  # Slack bot, user and refresh tokens
    r"|xapp-[A-Za-z0-9-]+"  # Slack app-level tokens
    r"|\S*hooks\.slack\.com\S*"  # response URLs, however a body spells them:
    # anyone holding one may post (https://…, https:\/\/… in JSON, https%3A%2F%2F… in a form)
    r"|(?i:bearer)\s+\S+"  # Authorization headers
)
# ``Basic base64(username:password)``, in a header or anywhere in a line; base64 may come
# with ``/`` JSON-escaped. Prose ("Basic Information", "basic auth") is told apart in
# _basic_credential.
_BASIC = re.compile(
    r"\b(?P<scheme>(?i:basic)\s+)(?P<credential>(?:[A-Za-z0-9+]|\\?/)+={0,2})(?![\w+/=\\])"
)
_WORD = re.compile(r"[A-Za-z][a-z]*")
# The value of a field named like a secret, whatever the value: a form or a ``k=v`` pair
# (``password=…``, ``access_token=…``), or a JSON/dict entry (``"password": "…"``). This
# catches a password too short to be looked for as a known value.
_FIELD_NAMES = r"\w*?(?:password|passwd|secret|token|(?:api|secret|private)_?key|authorization)"
_FIELD = re.compile(
    rf"(?P<lead>\b(?i:{_FIELD_NAMES})=)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s&;,]+)"
    rf"|(?P<qlead>(?P<kq>[\"'])(?i:{_FIELD_NAMES})(?P=kq)\s*:\s*)"
    r"(?P<q>[\"'])(?:\\.|(?!(?P=q))[^\\])*(?P=q)"
)
# Libraries whose DEBUG lines carry request and response bodies (slack_sdk, Bolt: a DM
# with the code, a response_url) or SQL parameters (aiosqlite, SQLAlchemy). Below INFO
# they are dropped by the handler itself: Bolt resets its loggers' levels to the root's,
# so a level set on their loggers would not hold.
_QUIET_BELOW_INFO = ("slack_sdk", "slack_bolt", "aiohttp.client", "aiosqlite", "sqlalchemy")


# Secrets met while running (invitation codes), redacted by every filter from then on;
# the newest REMEMBERED_MAX are kept, so memory and per-line cost stay bounded.
REMEMBERED_MAX = 1000
_remembered: dict[str, tuple[str, ...]] = {}


def remember_secret(value: str) -> None:
    """Have every log line redact ``value`` from now on; for codes seen at run time."""
    if len(value) >= SECRET_MIN:
        _remembered.pop(value, None)
        _remembered[value] = _spellings(value)
        while len(_remembered) > REMEMBERED_MAX:
            del _remembered[next(iter(_remembered))]


def _spellings(secret: str) -> tuple[str, ...]:
    """A secret as text, as JSON writes it (Slack escapes ``/``), and as a URL-encoded
    form field carries it; computed once, when the secret becomes known."""
    forms = (
        secret,
        secret.replace("/", "\\/"),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    )
    return tuple(dict.fromkeys(forms))


def _basic_credential(match: re.Match[str]) -> str:
    """``Basic [redacted]``, unless the word after "Basic" is prose: letters only, lower
    case after the first, and not the base64 of a ``user:password`` pair."""
    credential = match["credential"]
    if _WORD.fullmatch(credential) and not _is_pair(credential):
        return match[0]
    return match["scheme"] + REDACTED


def _is_pair(text: str) -> bool:
    try:
        return b":" in base64.b64decode(text, validate=True)
    except binascii.Error:
        return False


def _secret_field(match: re.Match[str]) -> str:
    if match["lead"] is not None:
        return match["lead"] + REDACTED
    return f"{match['qlead']}{match['q']}{REDACTED}{match['q']}"


class RedactSecrets(logging.Filter):
    """Replaces known secret values and secret-shaped strings in a record's message.

    A known secret shorter than SECRET_MIN characters is not looked for in free text:
    replacing every occurrence of a 1- to 5-character string would garble every line
    that happens to contain it (a 1-character token garbled every Jira error message,
    a 3-letter password every word containing those letters), and would point at the
    secret by where the gaps fall. Such a secret is still redacted where it is most
    likely to show: as the value of a field named like a secret (``password=…``,
    ``"password": "…"``), and inside a ``Basic`` header, whose base64 is redacted by
    shape and, from 6 characters on (any ``username:password`` of 4 bytes or more), as
    a known value. A short secret in prose is the cost; a password that short is weak
    anyway.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        kept = sorted((s for s in secrets if len(s) >= SECRET_MIN), key=len, reverse=True)
        self._secrets = tuple(spelling for secret in kept for spelling in _spellings(secret))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for spellings in _remembered.values():
            for spelling in spellings:
                text = text.replace(spelling, REDACTED)
        text = _PATTERNS.sub(REDACTED, text)
        text = _BASIC.sub(_basic_credential, text)
        return _FIELD.sub(_secret_field, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message} ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            # The traceback is kept, redacted like the message: an error nobody expected
            # needs its stack. Formatters print ``exc_text`` as it is.
            record.exc_text = self.redact(_TRACEBACKS.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record.msg = self.redact(message)
        record.args = None
        return True


_TRACEBACKS = logging.Formatter()


class JsonLines(logging.Formatter):
    """One JSON object per line, for log collectors.

    The bot logs ``event key=value …``; every line has ``event`` (the first word when it
    names one, else ``log``: a library's prose) and ``message`` (the whole line), and
    each pair becomes a field of its own, numbers as numbers, so ``request_approved id=7
    by=U1`` can be searched by ``id`` without parsing text. A traceback is ``traceback``.
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, _, rest = message.partition(" ")
        named = bool(_EVENT.fullmatch(event))
        line: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event if named else "log",
        }
        if named:
            line |= {key: _typed(value) for key, value in _PAIR.findall(rest)}
        line["message"] = message
        if record.exc_text:
            line["traceback"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def _typed(value: str) -> object:
    """A pair's value as JSON would hold it: ``13000`` a number, ``0.25`` too."""
    if re.fullmatch(r"-?\d{1,15}", value):
        return int(value)
    if re.fullmatch(r"-?\d{1,15}\.\d+", value):
        return float(value)
    return value


def configure_logging(
    level: str, secrets: Iterable[str] = (), *, json_lines: bool | None = None
) -> RedactSecrets:
    """One handler on the root logger, redacting, at ``level``; returns the filter.

    Lines are JSON when stderr is not a terminal (a service, a container), plain text
    for a person at a terminal; ``json_lines`` forces either.
    """
    redactor = RedactSecrets(secrets)
    handler = logging.StreamHandler(sys.stderr)
    if json_lines if json_lines is not None else not sys.stderr.isatty():
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(_libraries_at_info)
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("slack_bolt.AsyncApp").addFilter(_not_the_token_notice)
    return redactor


def _libraries_at_info(record: logging.LogRecord) -> bool:
    """Drop the quiet libraries' lines below INFO, whatever their loggers' levels, and
    Alembic's below WARNING: it narrates every start ("Context impl …"), and the bot's
    own ``schema_upgraded`` line says when the schema changed."""
    if record.name.startswith("alembic"):
        return record.levelno >= logging.WARNING
    return record.levelno >= logging.INFO or not record.name.startswith(_QUIET_BELOW_INFO)


def _not_the_token_notice(record: logging.LogRecord) -> bool:
    """Bolt warns at every start that SLACK_BOT_TOKEN is unused when a client is given,
    which is exactly how the bot passes its token; the notice would only alarm operators."""
    return "`token` will be unused" not in record.getMessage()
