"""The rules a request's fields obey before anyone is asked to approve it.

Exalate documents only "connection name at most 255 characters". Short names end up in
connection names, URLs and Groovy sync scripts, so they are kept identifier-safe: a
letter first, then letters, digits, ``_`` or ``-``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.approvals.model import RequestFields

SHORT_NAME_MAX = 50
CONNECTION_NAME_MAX = 255
DESCRIPTION_MAX = 1000
PROJECT_KEY_MAX = 255
SENT_MAX = 2000
"""The most characters a person's text (a description, a reason) may take as Slack
receives it, its ``&``, ``<`` and ``>`` written out as entities: what every message
keeps room for, so none is ever cut. The form's own limits count the text as typed."""

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
PROJECT_KEY = re.compile(rf"[A-Z][A-Z0-9_]{{0,{PROJECT_KEY_MAX - 1}}}")
"""Jira's own syntax for a project key (its most liberal setting), upper case."""
# What Slack needs each of these written as: & as &amp;, < as &lt;, > as &gt;.
_ENTITY_GROWTH = {"&": 4, "<": 3, ">": 3}


class Field(StrEnum):
    """The form's fields; handlers map each to the input block that shows its error."""

    SITE = "site"
    LOCAL = "local_short_name"
    REMOTE = "remote_short_name"
    NAME = "connection_name"
    DESCRIPTION = "description"
    PROJECT = "project_key"


@dataclass(frozen=True, slots=True)
class Draft:
    """The form as submitted: raw text, nothing checked yet."""

    local_short_name: str = ""
    remote_short_name: str = ""
    connection_name: str = ""
    description: str = ""
    project_key: str = ""
    site: str = ""
    """The site chosen; empty: the service takes the only one there is."""


def suggest_connection_name(local: str, remote: str) -> str:
    """Exalate's own naming habit: ``{local}_to_{remote}``."""
    return f"{local}_to_{remote}"


def _identifier_error(value: str, what: str, limit: int) -> str | None:
    if not value:
        return f"Enter the {what}."
    if len(value) > limit:
        return f"The {what} has {len(value)} characters; at most {limit} are allowed."
    if not _IDENTIFIER.fullmatch(value):
        return (
            f"The {what} must start with a letter and contain only letters, digits, "
            "'_' or '-' (no spaces)."
        )
    return None


def sent_length(text: str) -> int:
    """How many characters ``text`` takes as Slack receives it: each ``&`` as five,
    each ``<`` and ``>`` as four."""
    return len(text) + sum(text.count(c) * extra for c, extra in _ENTITY_GROWTH.items())


def _description_error(description: str) -> str | None:
    if "\x00" in description:
        return "The description contains a NUL character; remove it."
    if len(description) > DESCRIPTION_MAX:
        return (
            f"The description has {len(description)} characters; "
            f"at most {DESCRIPTION_MAX} are allowed."
        )
    if sent_length(description) > SENT_MAX:
        return (
            f"The description takes {sent_length(description)} characters as Slack receives "
            f"it (each & counts 5, each < or > 4); at most {SENT_MAX} fit. Shorten it."
        )
    return None


def _project_error(project: str) -> str | None:
    """Refused before Jira is asked: a key that cannot be one names no project, and in a
    URL it could name another resource (``..``)."""
    if not project:
        return "Choose the Jira project for incoming sync."
    if len(project) > PROJECT_KEY_MAX:
        return "That project key is too long to be a Jira project key."
    if not PROJECT_KEY.fullmatch(project):
        return (
            "That is not a Jira project key: a letter first, then letters, digits or _ "
            "(such as SUP)."
        )
    return None


def check_draft(draft: Draft) -> tuple[RequestFields | None, dict[Field, str]]:
    """Normalise a draft and check every offline rule.

    Returns the fields (``None`` if any rule failed) and one message per failing field,
    so the form can show every problem at once instead of one per submit.
    """
    local = draft.local_short_name.strip()
    remote = draft.remote_short_name.strip()
    name = draft.connection_name.strip()
    description = draft.description.strip()
    project = draft.project_key.strip().upper()  # Jira project keys are upper case
    errors: dict[Field, str] = {}

    for field, value, what in (
        (Field.LOCAL, local, "local instance short name"),
        (Field.REMOTE, remote, "remote instance short name"),
    ):
        if message := _identifier_error(value, what, SHORT_NAME_MAX):
            errors[field] = message
    if not name and Field.LOCAL not in errors and Field.REMOTE not in errors:
        name = suggest_connection_name(local, remote)
    if name and (message := _identifier_error(name, "connection name", CONNECTION_NAME_MAX)):
        errors[Field.NAME] = message
    if message := _description_error(description):
        errors[Field.DESCRIPTION] = message
    if message := _project_error(project):
        errors[Field.PROJECT] = message

    if errors or not name:
        return None, errors
    return RequestFields(local, remote, name, description, project, draft.site), errors
