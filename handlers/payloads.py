"""What a listener is handed, read in one place: the parts of Slack's payloads the bot
needs (a slash command's words, a form's values, a button's request reference)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.approvals.rules import Draft, Field

PREFILL_KEYS = frozenset({"site", "local", "remote", "name", "project", "description"})
QUOTING = re.compile(r"['\"\\]")
"""What makes ``shlex`` more than splitting at its whitespace: quotes and backslashes."""
SHELL_WORD = re.compile(r"[^ \t\r\n]+")
"""A word between ``shlex``'s whitespace."""


class UsageError(ValueError):
    """The slash-command text cannot be understood; the message says what is wrong."""


@dataclass(frozen=True)
class CommandLine:
    """``/exalate <sub-command> [key=value …]``, split."""

    sub_command: str
    options: dict[str, str] = field(default_factory=dict)
    words: tuple[str, ...] = ()


def parse_command(text: str) -> CommandLine:
    """Split the command text; quotes group words, as in a shell. Text with no quotes
    (``status``, every burst of it) is split without ``shlex``, ten times faster."""
    text = text.replace("\x00", "")
    try:
        words = shlex.split(text) if QUOTING.search(text) else SHELL_WORD.findall(text)
    except ValueError as error:
        raise UsageError(f"I could not read that command: {error}.") from None
    if not words:
        return CommandLine("help")
    options: dict[str, str] = {}
    rest: list[str] = []
    for word in words[1:]:
        key, equals, value = word.partition("=")
        if equals:
            options[key.lower()] = value
        else:
            rest.append(word)
    return CommandLine(words[0].lower(), options, tuple(rest))


def connect_prefill(line: CommandLine) -> dict[str, str]:
    """The form's initial values from ``connect key=value`` options."""
    unknown = sorted(set(line.options) - PREFILL_KEYS)
    if unknown or line.words:
        bad = ", ".join(unknown + list(line.words))
        raise UsageError(f"`connect` does not understand: {bad}.")
    return line.options


def _input_value(state: Mapping[str, Any], block_id: str) -> str:
    """The value of an input block, whatever element it holds."""
    actions = state.get(block_id) or {}
    for element in actions.values():
        if element.get("selected_option"):
            return str(element["selected_option"].get("value") or "")
        if element.get("selected_user"):
            return str(element["selected_user"])
        return str(element.get("value") or "")
    return ""


def draft_from_view(view: Mapping[str, Any]) -> Draft:
    """The request form as submitted; the site from its Site select, or, where the form
    had none, the one it was opened for."""
    state = view["state"]["values"]
    return Draft(
        site=_input_value(state, Field.SITE.value) or form_site(view),
        local_short_name=_input_value(state, Field.LOCAL.value),
        remote_short_name=_input_value(state, Field.REMOTE.value),
        connection_name=_input_value(state, Field.NAME.value),
        description=_input_value(state, Field.DESCRIPTION.value),
        project_key=_input_value(state, Field.PROJECT.value),
    )


def form_site(view: Mapping[str, Any]) -> str:
    """The site a request form was opened for (its ``private_metadata``), if any."""
    return str(view.get("private_metadata") or "")[:64]


def input_value(view: Mapping[str, Any], block_id: str) -> str:
    """One input's value from a submitted view."""
    return _input_value(view["state"]["values"], block_id)


def checked(view: Mapping[str, Any], block_id: str) -> bool:
    """Whether a one-option checkboxes input of a submitted view was ticked."""
    element = view["state"]["values"].get(block_id, {})
    return any(value.get("selected_options") for value in element.values())


@dataclass(frozen=True)
class RequestRef:
    """What a button or a modal says it is about: a request, and maybe its fingerprint."""

    request_id: int
    seen: str | None = None


def request_ref(value: str) -> RequestRef | None:
    """``id`` or ``id:fingerprint`` from a button value or ``private_metadata``.

    ``None`` when the value is not one the bot wrote (forged or mangled).
    """
    number, _, seen = value.partition(":")
    if not (number.isascii() and number.isdigit()) or len(number) > 17:
        return None
    if seen and not (len(seen) == 16 and all(c in "0123456789abcdef" for c in seen)):
        return None
    return RequestRef(int(number), seen or None)
