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

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


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
    if "\x00" in description:
        errors[Field.DESCRIPTION] = "The description contains a NUL character; remove it."
    elif len(description) > DESCRIPTION_MAX:
        errors[Field.DESCRIPTION] = (
            f"The description has {len(description)} characters; "
            f"at most {DESCRIPTION_MAX} are allowed."
        )
    if not project:
        errors[Field.PROJECT] = "Choose the Jira project for incoming sync."
    elif len(project) > PROJECT_KEY_MAX:
        errors[Field.PROJECT] = "That project key is too long to be a Jira project key."

    if errors or not name:
        return None, errors
    return RequestFields(local, remote, name, description, project, draft.site), errors
