"""Block Kit as Slack checks it: what a message or a view may hold, and how much.

slack_sdk's models (``slack_sdk.models``) know each block and element type and most of
their limits. Slack also refuses what they let through, which is checked here: more
than 50 blocks in a message, properties the models do not know (they drop them),
strings where objects belong (they coerce them), empty texts, section fields over
2,000 characters, select options (kept as raw dicts, never checked), a header or a
context holding the wrong kind of element, a view of the wrong type for the method,
and a modal without a title, or with inputs but no Submit button.

Each problem is one line in Slack's own style, ``[ERROR] <what> [json-pointer:/…]``,
as the ``response_metadata.messages`` of an ``invalid_blocks`` (messages) or
``invalid_arguments`` (views) answer carries them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, Option, OptionGroup
from slack_sdk.models.views import View

MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
PRIVATE_METADATA_MAX = 3000
SECTION_FIELD_MAX = 2000

# What slack_sdk's models raise, while building or checking, at what Slack refuses.
_MODEL_ERRORS = (SlackObjectFormationError, TypeError, KeyError, ValueError, AttributeError)
_TEXT_TYPES = ("plain_text", "mrkdwn")
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


def block_problems(blocks: Any, *, limit: int = MESSAGE_BLOCKS_MAX, at: str = "") -> list[str]:
    """What Slack would refuse in a ``blocks`` argument (found at ``at``); empty if none."""
    pointer = f"{at}/blocks"
    if not isinstance(blocks, list):
        return [_error("must provide an array", pointer)]
    problems = []
    if len(blocks) > limit:
        problems.append(_error(f"no more than {limit} items allowed", pointer))
    for index, block in enumerate(blocks):
        problems += _block_problems(block, f"{pointer}/{index}")
    return problems


def view_problems(view: Any, *, kind: str) -> list[str]:
    """What Slack would refuse in a ``view`` argument; ``kind`` is the type the method
    takes: ``modal`` for views.open, push and update, ``home`` for views.publish.

    A view sent again, to the character, gets the verdict it got before: forty people
    opening the request form at once send one view forty times, and checking it
    through slack_sdk's models costs some 1.5 ms of this process each time."""
    if not isinstance(view, dict):
        return [_error("must provide an object", "/view")]
    try:
        sent = json.dumps(view)
    except (TypeError, ValueError):  # not JSON, so not from Slack's wire: judged as it is
        return _view_problems(view, kind=kind)
    return list(_judged_view(sent, kind))


@functools.lru_cache(maxsize=256)
def _judged_view(sent: str, kind: str) -> tuple[str, ...]:
    return tuple(_view_problems(json.loads(sent), kind=kind))


def _view_problems(view: dict[str, Any], *, kind: str) -> list[str]:
    if view.get("type") != kind:
        return [_error(f"must be {kind}", "/view/type")]
    problems = block_problems(view.get("blocks"), limit=VIEW_BLOCKS_MAX, at="/view")
    metadata = view.get("private_metadata")
    if metadata is not None and len(str(metadata)) > PRIVATE_METADATA_MAX:
        problems.append(_too_long(PRIVATE_METADATA_MAX, "/view/private_metadata"))
    if kind == "modal":
        problems += _modal_problems(view)
    if problems:
        return problems
    try:
        View(**{k: v for k, v in view.items() if k in _VIEW_ARGUMENTS}).to_dict()
    except _MODEL_ERRORS as error:
        problems.append(_error(f"failed to match all allowed schemas ({error})", "/view"))
    return problems


def input_block_ids(view: dict[str, Any]) -> set[str]:
    """The block ids a ``response_action: errors`` answer may name for ``view``."""
    return {
        str(block.get("block_id"))
        for block in view.get("blocks") or []
        if isinstance(block, dict) and block.get("type") == "input"
    }


def _modal_problems(view: dict[str, Any]) -> list[str]:
    problems = []
    if not view.get("title"):
        problems.append(_error("missing required field: title", "/view"))
    inputs = [
        index
        for index, block in enumerate(view.get("blocks") or [])
        if isinstance(block, dict) and block.get("type") == "input"
    ]
    if inputs and not view.get("submit"):
        pointer = f"/view/blocks/{inputs[0]}/input"
        problems.append(_error("must define `submit` to use an `input` block in modals", pointer))
    return problems


def _block_problems(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict):
        return [_error("must provide an object", pointer)]
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return [_error(f"unsupported type: {block.get('type')}", f"{pointer}/type")]
        understood = parsed.to_dict()  # validates every nested object on the way
        _check_options(block)
    except _MODEL_ERRORS as error:
        return [_error(f"failed to match all allowed schemas ({error})", pointer)]
    problems = [
        _error(what, f"{pointer}{path}") for path, what in _not_understood(block, understood)
    ]
    return problems + list(_what_the_models_allow(block, pointer))


def _not_understood(sent: Any, understood: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, problem) where the model dropped or reshaped what was sent."""
    if isinstance(sent, dict):
        if not isinstance(understood, dict):
            yield path, "must provide a valid object"
            return
        for key, value in sent.items():
            if value in ("", None, [], {}):
                yield f"{path}/{key}", "must be more than 0 characters or items"
            elif key not in understood:
                yield f"{path}/{key}", "unsupported property"
            else:
                yield from _not_understood(value, understood[key], f"{path}/{key}")
    elif isinstance(sent, list):
        if not isinstance(understood, list) or len(understood) != len(sent):
            yield path, "must provide a valid array"
            return
        for index, (item, model) in enumerate(zip(sent, understood, strict=True)):
            yield from _not_understood(item, model, f"{path}/{index}")
    elif isinstance(understood, dict | list):
        yield path, "must provide an object"


def _what_the_models_allow(block: dict[str, Any], pointer: str) -> Iterator[str]:
    """Limits and kinds slack_sdk's models do not check (shapes were checked before)."""
    kind = block.get("type")
    if kind == "header" and _kind_of(block.get("text")) != "plain_text":
        yield _error("must be plain_text", f"{pointer}/text/type")
    if kind == "context":
        for index, element in enumerate(block.get("elements") or []):
            if _kind_of(element) not in (*_TEXT_TYPES, "image"):
                at = f"{pointer}/elements/{index}/type"
                yield _error(f"unsupported type: {_kind_of(element)}", at)
    for index, field in enumerate(block.get("fields") or []):
        if isinstance(field, dict) and len(str(field.get("text", ""))) > SECTION_FIELD_MAX:
            yield _too_long(SECTION_FIELD_MAX, f"{pointer}/fields/{index}/text")


def _kind_of(element: Any) -> Any:
    return element.get("type") if isinstance(element, dict) else None


def _check_options(node: Any) -> None:
    """Options inside selects are kept as raw dicts by the models: build each one."""
    if isinstance(node, list):
        for item in node:
            _check_options(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("options", "initial_options"):
                for option in value:
                    Option(**option).to_dict()
            elif key == "initial_option":
                Option(**value).to_dict()
            elif key == "option_groups":
                for group in value:
                    OptionGroup(**group).to_dict()
            else:
                _check_options(value)


def _too_long(limit: int, pointer: str) -> str:
    return _error(f"must be less than {limit + 1} characters", pointer)


def _error(what: str, pointer: str) -> str:
    return f"[ERROR] {what} [json-pointer:{pointer}]"


def ack_problems(answer: Mapping[str, Any], view: Mapping[str, Any] | None = None) -> list[str]:
    """What Slack would refuse in an ack's body or a response_url post: its blocks, the
    view it pushes or updates to, and the fields its errors name (input blocks of the
    submitted ``view``, when known)."""
    problems = block_problems(answer["blocks"]) if "blocks" in answer else []
    if "view" in answer:
        problems += view_problems(answer["view"], kind="modal")
    if answer.get("response_action") == "errors" and view is not None:
        inputs = input_block_ids(dict(view))
        problems += [
            f"[ERROR] errors may name only input blocks of the view, not {key!r}"
            for key, message in answer.get("errors", {}).items()
            if key not in inputs or not message
        ]
    return problems
