"""The shapes of what Slack sends, checked before Bolt sees a payload.

Bolt and the listeners index into payloads as Slack writes them (``body["user"]["id"]``,
``body["actions"][0]["action_id"]``, ``view["state"]["values"]``): a signed payload of
another shape (a replay edited before signing, a proxy's mistake, a test) raised in
there, and the request ended in a 500 and an ERROR line with a traceback. Each type the
bot receives is checked here for the fields that Bolt's routing and the bot's listeners
read, with the JSON types Slack gives them; fields Slack may leave out or send as
``null`` may be missing or ``null``. What is named in a problem is the field's path in
the bot's words, never a value or a key the sender chose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.ids import View

Json = Mapping[str, Any]
Problem = tuple[str, str]
"""(kind, field): the payload's type (``command`` for a slash command) and what is wrong."""
Steps = tuple[str | int, ...]

_NESTING = 4
"""How deep Bolt looks for a user, team or channel (``event.message…``); Slack nests
less, and a deeper chain is refused rather than followed."""
_MISSING = object()


def problem(payload: Json) -> Problem | None:
    """What is wrong with a signed payload, or None when Bolt and the listeners can read
    it as they read Slack's."""
    kind = kind_of(payload)
    check = _SHAPES.get(kind)
    if check is None:
        return ("unknown", "type")
    wrong = _context_problem(payload, "", 0) or check(payload)
    return (kind, wrong) if wrong else None


def kind_of(payload: Json) -> str:
    """As Bolt routes it: anything with a ``command`` is a slash command."""
    if "command" in payload:
        return "command"
    kind = payload.get("type")
    return kind if isinstance(kind, str) and kind in _SHAPES else "unknown"


def _steps(path: str) -> Steps:
    """``"actions.0.action_id"`` as keys and list indexes."""
    return tuple(int(step) if step.isdigit() else step for step in path.split("."))


def _get(value: Any, steps: Steps) -> Any:
    """The value at ``steps``, or ``_MISSING``."""
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or len(value) <= step:
                return _MISSING
            value = value[step]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return _MISSING
    return value


@dataclass(frozen=True, slots=True)
class _Rule:
    """The field at ``steps`` (``path``, dotted) has one of the JSON types ``kinds``
    (with ``type(None)``, ``null`` too), and is there if ``required``."""

    path: str
    steps: Steps
    kinds: tuple[type, ...]
    required: bool

    def broken(self, payload: Json) -> bool:
        value = _get(payload, self.steps)
        if value is _MISSING:
            return self.required
        return not isinstance(value, self.kinds)


def _rules(*rules: tuple[str, tuple[type, ...], bool]) -> tuple[_Rule, ...]:
    return tuple(_Rule(path, _steps(path), kinds, required) for path, kinds, required in rules)


def _first(payload: Json, rules: tuple[_Rule, ...]) -> str | None:
    """The path of the first rule ``payload`` breaks."""
    for rule in rules:
        if rule.broken(payload):
            return rule.path
    return None


STRING = (str,)
OBJECT = (dict,)
LIST = (list,)
MAYBE_STRING = (str, type(None))
MAYBE_OBJECT = (dict, type(None))
MAYBE_LIST = (list, type(None))
ID_OR_OBJECT = (str, dict, type(None))
REQUIRED, OPTIONAL = True, False

# What Bolt reads of any payload to build its context (who, which team, which channel),
# looking into the nested objects of _NESTED too; an object is allowed where Slack writes
# one (``"user": {"id": …}``), a string where it writes an id.
_CONTEXT = _rules(
    ("type", STRING, OPTIONAL),
    ("user", ID_OR_OBJECT, OPTIONAL),
    ("user.id", MAYBE_STRING, OPTIONAL),
    ("team", ID_OR_OBJECT, OPTIONAL),
    ("team.id", MAYBE_STRING, OPTIONAL),
    ("enterprise", ID_OR_OBJECT, OPTIONAL),
    ("enterprise.id", MAYBE_STRING, OPTIONAL),
    ("channel", ID_OR_OBJECT, OPTIONAL),
    ("channel.id", MAYBE_STRING, OPTIONAL),
    ("user_id", MAYBE_STRING, OPTIONAL),
    ("team_id", MAYBE_STRING, OPTIONAL),
    ("enterprise_id", MAYBE_STRING, OPTIONAL),
    ("channel_id", MAYBE_STRING, OPTIONAL),
    ("thread_ts", MAYBE_STRING, OPTIONAL),
    ("event", OBJECT, OPTIONAL),  # Bolt's ``body.get("event", {}).get(…)``: not even null
    ("authorizations", MAYBE_LIST, OPTIONAL),
    ("authorizations.0", OBJECT, OPTIONAL),
    ("response_url", MAYBE_STRING, OPTIONAL),
    ("response_urls", LIST, OPTIONAL),  # Bolt takes its len(): not even null
    ("response_urls.0", OBJECT, OPTIONAL),
    ("response_urls.0.response_url", MAYBE_STRING, OPTIONAL),
    ("trigger_id", MAYBE_STRING, OPTIONAL),
)
_NESTED = tuple(
    (path, _steps(path))
    for path in (
        "event",
        "authorizations.0",
        "message",
        "previous_message",
        "item",
        "assistant_thread",
    )
)


def _context_problem(payload: Json, prefix: str, depth: int) -> str | None:
    """The first context field of ``payload`` (found at ``prefix``) Bolt could not read."""
    wrong = _first(payload, _CONTEXT)
    if wrong is not None:
        return prefix + wrong
    for path, steps in _NESTED:
        inner = _get(payload, steps)
        if not isinstance(inner, dict):
            continue
        if depth + 1 >= _NESTING:
            return prefix + path
        wrong = _context_problem(inner, f"{prefix}{path}.", depth + 1)
        if wrong is not None:
            return wrong
    return None


FORMS = frozenset({View.REQUEST, View.REJECT, View.PASTE, View.HAND_OVER})
"""The bot's forms: each has inputs, so Slack sends their ``state.values``."""
_VIEW_SHOWN = _rules(
    ("id", MAYBE_STRING, OPTIONAL),
    ("callback_id", MAYBE_STRING, OPTIONAL),
    ("private_metadata", MAYBE_STRING, OPTIONAL),
    ("state", OBJECT, OPTIONAL),
    ("state.values", OBJECT, OPTIONAL),
)
_VIEW_SUBMITTED = _rules(
    ("id", STRING, REQUIRED),
    ("callback_id", STRING, REQUIRED),
    ("private_metadata", MAYBE_STRING, OPTIONAL),
    ("state", OBJECT, OPTIONAL),
    ("state.values", OBJECT, OPTIONAL),
)
_FORM_SUBMITTED = _rules(
    ("id", STRING, REQUIRED),
    ("callback_id", STRING, REQUIRED),
    ("private_metadata", MAYBE_STRING, OPTIONAL),
    ("state", OBJECT, REQUIRED),
    ("state.values", OBJECT, REQUIRED),
)
# What ``handlers.payloads`` reads of a form's input elements.
_ELEMENT = _rules(
    ("value", MAYBE_STRING, OPTIONAL),
    ("selected_option", MAYBE_OBJECT, OPTIONAL),
    ("selected_option.value", MAYBE_STRING, OPTIONAL),
    ("selected_options", MAYBE_LIST, OPTIONAL),
    ("selected_user", MAYBE_STRING, OPTIONAL),
)
_STATE_VALUES: Steps = ("state", "values")


def _view_problem(view: Any, *, submitted: bool) -> str | None:
    """A view as the listeners read it: ``id``, ``callback_id``, ``private_metadata`` (the
    request it is about) and ``state.values``, block by block, element by element; the
    first three required in a submission, the state in a submission of one of the
    bot's forms."""
    if not isinstance(view, dict):
        return "view"
    if not submitted:
        rules = _VIEW_SHOWN
    else:
        rules = _FORM_SUBMITTED if view.get("callback_id") in FORMS else _VIEW_SUBMITTED
    wrong = _first(view, rules)
    if wrong is not None:
        return f"view.{wrong}"
    values = _get(view, _STATE_VALUES)
    if values is _MISSING:
        return None
    for block in values.values():
        if not isinstance(block, dict):
            return "view.state.values.*"
        for element in block.values():
            if not isinstance(element, dict):
                return "view.state.values.*.*"
            wrong = _first(element, _ELEMENT)
            if wrong is not None:
                return f"view.state.values.*.*.{wrong}"
    return None


_COMMAND = _rules(
    ("command", STRING, REQUIRED),
    ("user_id", STRING, REQUIRED),
    ("text", MAYBE_STRING, OPTIONAL),
    ("trigger_id", STRING, REQUIRED),
    ("response_url", STRING, REQUIRED),
)
_USER = _rules(("user", OBJECT, REQUIRED), ("user.id", STRING, REQUIRED))
_CLICK = _rules(
    ("actions", LIST, REQUIRED),
    ("actions.0", OBJECT, REQUIRED),
    ("actions.0.action_id", STRING, REQUIRED),
    ("actions.0.block_id", MAYBE_STRING, OPTIONAL),
    ("actions.0.value", MAYBE_STRING, OPTIONAL),
    ("container", MAYBE_OBJECT, OPTIONAL),
)
_CLOSED = _rules(("view", OBJECT, REQUIRED), ("view.callback_id", STRING, REQUIRED))
_SUGGESTION = _rules(
    ("action_id", STRING, REQUIRED),
    ("block_id", MAYBE_STRING, OPTIONAL),
    ("value", MAYBE_STRING, OPTIONAL),
)
_EVENT = _rules(("event", OBJECT, REQUIRED), ("event.type", STRING, REQUIRED))
_HOME_OPENED = _rules(("event.user", STRING, REQUIRED), ("event.tab", MAYBE_STRING, OPTIONAL))
_CHALLENGE = _rules(("challenge", STRING, REQUIRED))


def _command(payload: Json) -> str | None:
    """A slash command: the listener reads who, the text, and the trigger_id and
    response_url to answer with."""
    return _first(payload, _COMMAND)


def _block_actions(payload: Json) -> str | None:
    """A click: who, and the first action's id and value (Bolt routes on ``action_id``),
    and the view it was in, if any."""
    wrong = _first(payload, _USER) or _first(payload, _CLICK)
    if wrong is None and payload.get("view") is not None:
        return _view_problem(payload["view"], submitted=False)
    return wrong


def _view_submission(payload: Json) -> str | None:
    return _first(payload, _USER) or _view_problem(payload.get("view"), submitted=True)


def _view_closed(payload: Json) -> str | None:
    wrong = _first(payload, _USER) or _first(payload, _CLOSED)
    return wrong or _view_problem(payload["view"], submitted=False)


def _block_suggestion(payload: Json) -> str | None:
    """The project select asking for options: what was typed, in which form."""
    wrong = _first(payload, _USER) or _first(payload, _SUGGESTION)
    if wrong is None and payload.get("view") is not None:
        return _view_problem(payload["view"], submitted=False)
    return wrong


def _event_callback(payload: Json) -> str | None:
    """An event: Bolt routes on ``event.type``; App Home's listener reads who and which tab."""
    wrong = _first(payload, _EVENT)
    if wrong is None and payload["event"]["type"] == "app_home_opened":
        wrong = _first(payload, _HOME_OPENED)
    return wrong


def _url_verification(payload: Json) -> str | None:
    """Slack checking the request URL: Bolt answers with the challenge."""
    return _first(payload, _CHALLENGE)


def _nothing_read(_payload: Json) -> str | None:
    """A notice no listener reads (``app_rate_limited``): Bolt acknowledges it."""
    return None


_SHAPES: dict[str, Callable[[Json], str | None]] = {
    "command": _command,
    "block_actions": _block_actions,
    "view_submission": _view_submission,
    "view_closed": _view_closed,
    "block_suggestion": _block_suggestion,
    "event_callback": _event_callback,
    "url_verification": _url_verification,
    "app_rate_limited": _nothing_read,
}
KINDS = frozenset(_SHAPES)
"""The payload types the gate lets through to Bolt."""
