"""The modals: the request form, the rejection reason, pasting a code, showing one."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from bot.approvals.model import ConnectionRequest
from bot.approvals.rules import (
    CONNECTION_NAME_MAX,
    DESCRIPTION_MAX,
    PROJECT_KEY,
    SHORT_NAME_MAX,
    Field,
)
from bot.ports import JiraProject
from handlers.blocks.messages import invitation_dm
from handlers.blocks.text import (
    Json,
    connection_name,
    mention,
    plain,
    section,
)
from handlers.ids import INPUT_ACTION, Action, Block, View

MAX_STATIC_OPTIONS = 100


REASON_MAX = 1000


CODE_MAX = 2900  # fits a section with its code fence; Exalate's codes are far shorter


def project_option(project: JiraProject) -> Json:
    """One select option: ``KEY — Name`` (Slack cuts option text at 75 characters)."""
    return {"text": plain(f"{project.key} — {project.name}", 75), "value": project.key[:150]}


def project_options(projects: Iterable[JiraProject], query: str = "") -> list[Json]:
    """Options matching ``query`` in key or name, at most Slack's 100."""
    needle = query.strip().lower()
    matches = (p for p in projects if needle in p.key.lower() or needle in p.name.lower())
    return [project_option(project) for project in itertools.islice(matches, MAX_STATIC_OPTIONS)]


def _text_input(
    field: Field,
    label: str,
    *,
    initial: str,
    max_length: int,
    hint: str | None = None,
    optional: bool = False,
    multiline: bool = False,
) -> Json:
    element: Json = {
        "type": "plain_text_input",
        "action_id": INPUT_ACTION,
        "max_length": max_length,
        "multiline": multiline,
    }
    if initial:
        element["initial_value"] = initial[:max_length]
    block: Json = {
        "type": "input",
        "block_id": field.value,
        "label": plain(label, 2000),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def request_modal(
    *,
    sites: Sequence[tuple[str, str]] = (),
    site: str = "",
    local: str = "",
    remote: str = "",
    name: str = "",
    description: str = "",
    project: str = "",
    projects: Sequence[JiraProject] | None = None,
) -> Json:
    """The form that mirrors Exalate's "Initiate connection" wizard.

    ``sites`` are the sites to choose from, as (name, local short name): a **Site**
    select comes first when there are several. ``site`` is the one chosen already (it
    travels in ``private_metadata`` too, for the project menu's type-ahead); ``projects``
    is that site's cached project list, for the project menu.
    """
    rule = "A letter first, then letters, digits, _ or -."
    local_hint = f"Your side. {rule}"
    if len(sites) > 1 and not site:
        own = ", ".join(f"{n}: {short}" for n, short in sites if short)
        local_hint = f"Leave empty for the site's own ({own}). {rule}" if own else local_hint
    blocks = [
        section(
            "Ask for a *private* connection in *Script* mode. Once an approver agrees, "
            "you receive the invitation code privately, to send to your partner."
        ),
    ]
    if len(sites) > 1:
        blocks.append(_site_select(sites, site))
    return {
        "type": "modal",
        "callback_id": View.REQUEST.value,
        "private_metadata": site,
        "title": plain("Exalate connection", 24),
        "submit": plain("Request", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            *blocks,
            _text_input(
                Field.LOCAL,
                "Local instance short name",
                initial=local,
                max_length=SHORT_NAME_MAX,
                hint=local_hint,
                optional=len(sites) > 1 and not site,
            ),
            _text_input(
                Field.REMOTE,
                "Remote (destination) instance short name",
                initial=remote,
                max_length=SHORT_NAME_MAX,
                hint=f"The partner's side, in their private network. {rule}",
            ),
            _text_input(
                Field.NAME,
                "Connection name",
                initial=name,
                max_length=CONNECTION_NAME_MAX,
                optional=True,
                hint="Leave empty for {local}_to_{remote}.",
            ),
            _text_input(
                Field.DESCRIPTION,
                "Description",
                initial=description,
                max_length=DESCRIPTION_MAX,
                optional=True,
                multiline=True,
            ),
            _project_input(project, projects),
        ],
    }


def _project_input(project: str, projects: Sequence[JiraProject] | None) -> Json:
    """The project select, ``project`` preselected only if the cached list has it; one
    the list lacks is not offered (a made-up key would cost a lookup in Jira at each
    submission), and the hint says so."""
    block: Json = {
        "type": "input",
        "block_id": Field.PROJECT.value,
        "label": plain("Jira project for incoming sync"),
        "element": _project_select(project, projects),
    }
    key = project.strip().upper()
    if key and projects is not None and "initial_option" not in block["element"]:
        named = key if PROJECT_KEY.fullmatch(key) else "The project given"
        block["hint"] = plain(f"{named} is not among the projects offered here; choose one.")
    return block


def _site_select(sites: Sequence[tuple[str, str]], site: str) -> Json:
    """The Exalate node the connection is created on; ``site`` preselected."""
    options = [{"text": plain(name, 75), "value": name} for name, _ in sites]
    element: Json = {
        "type": "static_select",
        "action_id": INPUT_ACTION,
        "placeholder": plain("Choose the Exalate node"),
        "options": options,
    }
    chosen = [option for option in options if option["value"] == site]
    if chosen:
        element["initial_option"] = chosen[0]
    return {
        "type": "input",
        "block_id": Field.SITE.value,
        "label": plain("Site"),
        "element": element,
    }


def _project_select(project: str, projects: Sequence[JiraProject] | None) -> Json:
    """Up to 100 cached projects go into a static select; with more, or none cached
    yet, the select loads options as the person types. ``project`` is preselected if
    the cached list has it."""
    element: Json = {"action_id": Action.PROJECT.value, "placeholder": plain("Choose a project")}
    if projects is not None and 0 < len(projects) <= MAX_STATIC_OPTIONS:
        element |= {"type": "static_select", "options": project_options(projects)}
    else:
        element |= {"type": "external_select", "min_query_length": 0}
    chosen = next((p for p in projects or () if p.key == project.strip().upper()), None)
    if chosen is not None:
        element["initial_option"] = project_option(chosen)
    return element


def reject_modal(request: ConnectionRequest) -> Json:
    """Asks the approver why; the reason goes to the requester."""
    return {
        "type": "modal",
        "callback_id": View.REJECT.value,
        "private_metadata": f"{request.id}:{request.fingerprint}",
        "title": plain("Reject request", 24),
        "submit": plain("Reject", 24),
        "close": plain("Back", 24),
        "blocks": [
            section(f"Reject *{connection_name(request)}* for {mention(request.requester)}?"),
            {
                "type": "input",
                "block_id": Block.REASON.value,
                "label": plain("Reason (sent to the requester)"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": REASON_MAX,
                },
            },
            {
                "type": "input",
                "block_id": Block.REJECT_ALL.value,
                "optional": True,
                "label": plain("Flooding or squatting names?"),
                "element": {
                    "type": "checkboxes",
                    "action_id": INPUT_ACTION,
                    "options": [
                        {
                            "text": plain("Reject every open request of this requester", 75),
                            "value": "all",
                        }
                    ],
                },
            },
        ],
    }


def paste_modal(request: ConnectionRequest) -> Json:
    """Asks an approver for the code copied from the Exalate console."""
    name = connection_name(request)
    return {
        "type": "modal",
        "callback_id": View.PASTE.value,
        "private_metadata": str(request.id),
        "title": plain("Paste invitation code", 24),
        "submit": plain("Send to requester", 24),
        "close": plain("Back", 24),
        "blocks": [
            section(
                f"In the Exalate console, open *Connections → {name}* and copy its invitation "
                f"code. It goes to {mention(request.requester)} privately, and nowhere else."
            ),
            {
                "type": "input",
                "block_id": Block.CODE.value,
                "label": plain("Invitation code"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": CODE_MAX,
                },
            },
        ],
    }


def hand_over_modal(request: ConnectionRequest) -> Json:
    """Asks an approver whom to give a request to, its requester having left."""
    return {
        "type": "modal",
        "callback_id": View.HAND_OVER.value,
        "private_metadata": str(request.id),
        "title": plain("Hand over request", 24),
        "submit": plain("Hand over", 24),
        "close": plain("Back", 24),
        "blocks": [
            section(
                f"Who takes over *{connection_name(request)}* from {mention(request.requester)}? "
                "They are told of it, and get its invitation code privately."
            ),
            {
                "type": "input",
                "block_id": Block.NEW_REQUESTER.value,
                "label": plain("New requester"),
                "element": {"type": "users_select", "action_id": INPUT_ACTION},
            },
        ],
    }


def code_modal(request: ConnectionRequest, code: str) -> Json:
    """The code again, in a modal: it is not kept in message history."""
    _, body = invitation_dm(request, code)
    return {
        "type": "modal",
        "callback_id": View.CODE.value,
        "title": plain("Invitation code", 24),
        "close": plain("Close", 24),
        "blocks": body[1:],
    }


def notice_modal(text: str) -> Json:
    """A modal that only explains, when a button cannot do what it offers."""
    return {
        "type": "modal",
        "callback_id": View.CODE.value,
        "title": plain("Exalate", 24),
        "close": plain("Close", 24),
        "blocks": [section(text)],
    }
