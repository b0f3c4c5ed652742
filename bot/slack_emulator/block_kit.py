"""Block Kit as Slack checks it: what a message or a view may hold, and how much.

slack_sdk's models (``slack_sdk.models``) know each block and element type and many of
their limits; Slack also refuses what they let through: too many blocks, over-long
texts they do not measure, properties no block has, and a modal with inputs but no
Submit button. Each problem is one line in Slack's own style,
``[ERROR] <what> [json-pointer:/blocks/0/text/text]``, as ``response_metadata.messages``
of an ``invalid_blocks`` or ``invalid_arguments`` answer carries it.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

# What slack_sdk's models raise, while building or checking, at what Slack refuses.
_MODEL_ERRORS = (SlackObjectFormationError, TypeError, KeyError, ValueError, AttributeError)

MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
PRIVATE_METADATA_MAX = 3000

# Limits by (role, key): the role is the type of the object holding the key ("button",
# "section", …), or "option" / "confirm" for those objects, which carry no type; "*"
# is any role. Texts with no entry may hold 3000 characters.
_TEXT_LIMITS = {
    ("section", "text"): 3000,
    ("section", "fields"): 2000,
    ("header", "text"): 150,
    ("button", "text"): 75,
    ("input", "label"): 2000,
    ("input", "hint"): 2000,
    ("*", "placeholder"): 150,
    ("option", "text"): 75,
    ("option", "description"): 75,
    ("option_group", "label"): 75,
    ("confirm", "title"): 100,
    ("confirm", "text"): 300,
    ("confirm", "confirm"): 30,
    ("confirm", "deny"): 30,
}
_STRING_LIMITS = {
    ("*", "action_id"): 255,
    ("*", "block_id"): 255,
    ("*", "url"): 3000,
    ("button", "value"): 2000,
    ("option", "value"): 150,
    ("plain_text_input", "initial_value"): 3000,
}
_DEFAULT_TEXT_LIMIT = 3000
_OPTION_KEYS = frozenset({"options", "initial_options", "initial_option"})


def block_problems(blocks: Any, *, limit: int = MESSAGE_BLOCKS_MAX) -> list[str]:
    """What Slack would refuse in a ``blocks`` argument; empty when it accepts it."""
    if not isinstance(blocks, list):
        return [_error("must provide an array", "/blocks")]
    problems = []
    if len(blocks) > limit:
        problems.append(_error(f"no more than {limit} items allowed", "/blocks"))
    for index, block in enumerate(blocks):
        problems += _one_block(block, f"/blocks/{index}")
    return problems


def view_problems(view: Any) -> list[str]:
    """What Slack would refuse in a ``view`` argument (a modal or an App Home)."""
    if not isinstance(view, dict):
        return [_error("must provide an object", "/view")]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [_error("must be one of modal, home", "/view/type")]
    problems = block_problems(view.get("blocks"), limit=VIEW_BLOCKS_MAX)
    metadata = view.get("private_metadata")
    if metadata is not None and len(str(metadata)) > PRIVATE_METADATA_MAX:
        problems.append(_too_long(PRIVATE_METADATA_MAX, "/view/private_metadata"))
    if kind == "modal":
        if not view.get("title"):
            problems.append(_error("missing required field: title", "/view"))
        inputs = [
            index
            for index, block in enumerate(view.get("blocks") or [])
            if isinstance(block, dict) and block.get("type") == "input"
        ]
        if inputs and not view.get("submit"):
            problems.append(
                _error(
                    "must define `submit` to use an `input` block in modals",
                    f"/view/blocks/{inputs[0]}/input",
                )
            )
    if problems:
        return problems
    try:
        View(**{k: v for k, v in view.items() if k in _VIEW_ARGUMENTS}).to_dict()
    except _MODEL_ERRORS as error:
        problems.append(_error(f"failed to match all allowed schemas ({error})", "/view"))
    return problems


# The view properties a caller sends; Slack adds the others (id, hash, state, …).
_VIEW_ARGUMENTS = frozenset(
    {
        "type",
        "title",
        "blocks",
        "close",
        "submit",
        "private_metadata",
        "callback_id",
        "clear_on_close",
        "notify_on_close",
        "external_id",
        "submit_disabled",
    }
)


def _one_block(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict):
        return [_error("must provide an object", pointer)]
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return [_error(f"unsupported type: {block.get('type')}", f"{pointer}/type")]
        understood = parsed.to_dict()  # validates every nested object on the way
    except _MODEL_ERRORS as error:
        return [_error(f"failed to match all allowed schemas ({error})", pointer)]
    problems = [
        _error("unsupported property", f"{pointer}{path}") for path in _dropped(block, understood)
    ]
    problems += _kinds_the_models_allow(block, pointer)
    problems += _measure(block, pointer, str(block.get("type")))
    return problems


def _kinds_the_models_allow(block: dict[str, Any], pointer: str) -> list[str]:
    """Element types slack_sdk accepts where Slack does not: a header's text must be
    plain_text, and a context holds only texts and images."""
    if block.get("type") == "header" and block["text"].get("type") != "plain_text":
        return [_error("must be plain_text", f"{pointer}/text/type")]
    if block.get("type") == "context":
        kinds = [e.get("type") if isinstance(e, dict) else None for e in block["elements"]]
        return [
            _error(f"unsupported type: {kind}", f"{pointer}/elements/{index}/type")
            for index, kind in enumerate(kinds)
            if kind not in ("plain_text", "mrkdwn", "image")
        ]
    return []


def _dropped(sent: Any, understood: Any, path: str = "") -> list[str]:
    """Paths of properties in ``sent`` that the model did not understand."""
    if isinstance(sent, dict) and isinstance(understood, dict):
        return [
            found
            for key, value in sent.items()
            if value not in ("", None)  # an empty value has a problem of its own
            for found in (
                _dropped(value, understood[key], f"{path}/{key}")
                if key in understood
                else [f"{path}/{key}"]
            )
        ]
    if isinstance(sent, list) and isinstance(understood, list) and len(sent) == len(understood):
        return [
            found
            for index, (item, model) in enumerate(zip(sent, understood, strict=True))
            for found in _dropped(item, model, f"{path}/{index}")
        ]
    return []


def _measure(node: Any, pointer: str, role: str) -> list[str]:
    """Length limits, walked through every nested object of one block."""
    problems: list[str] = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            at = f"{pointer}/{index}"
            problems += (
                _text_problems(item, _text_limit(role, "elements"), at)
                if _is_text(item)
                else _measure(item, at, _role_of(item, role))
            )
        return problems
    if not isinstance(node, dict):
        return problems
    for key, value in node.items():
        at = f"{pointer}/{key}"
        if _is_text(value):
            problems += _text_problems(value, _text_limit(role, key), at)
        elif key == "fields" and isinstance(value, list):
            for index, text in enumerate(value):
                problems += _text_problems(text, _text_limit(role, key), f"{at}/{index}")
        elif isinstance(value, str):
            limit = _string_limit(role, key)
            if limit is not None and len(value) > limit:
                problems.append(_too_long(limit, at))
        elif key in _OPTION_KEYS:
            problems += _measure(value, at, "option")
        elif key == "option_groups":
            problems += _measure(value, at, "option_group")
        elif key == "confirm":
            problems += _measure(value, at, "confirm")
        else:
            problems += _measure(value, at, _role_of(value, role))
    return problems


def _role_of(node: Any, default: str) -> str:
    kind = node.get("type") if isinstance(node, dict) else None
    return kind if isinstance(kind, str) else default


def _text_limit(role: str, key: str) -> int:
    return _TEXT_LIMITS.get((role, key), _TEXT_LIMITS.get(("*", key), _DEFAULT_TEXT_LIMIT))


def _string_limit(role: str, key: str) -> int | None:
    return _STRING_LIMITS.get((role, key), _STRING_LIMITS.get(("*", key)))


def _is_text(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in ("plain_text", "mrkdwn")


def _text_problems(text_object: Any, limit: int, pointer: str) -> list[str]:
    text = text_object.get("text") if isinstance(text_object, dict) else None
    if not isinstance(text, str) or not text:
        return [_error("must be more than 0 characters", f"{pointer}/text")]
    if len(text) > limit:
        return [_too_long(limit, f"{pointer}/text")]
    return []


def _too_long(limit: int, pointer: str) -> str:
    return _error(f"must be less than {limit + 1} characters", pointer)


def _error(what: str, pointer: str) -> str:
    return f"[ERROR] {what} [json-pointer:{pointer}]"
