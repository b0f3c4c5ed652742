"""Block Kit builders: pure functions from domain values to Slack JSON, no I/O.

Everything a person typed goes through ``escape`` before it enters mrkdwn, so a
description cannot ping ``@channel``, mention people or forge links. The invitation code
appears in exactly one builder, ``invitation_dm``, which only ever goes to a DM.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.approvals.errors import ApprovalError, Conflict
from bot.approvals.model import AuditEvent, ConnectionRequest, Page, Status
from bot.approvals.rules import (
    CONNECTION_NAME_MAX,
    DESCRIPTION_MAX,
    SHORT_NAME_MAX,
    Field,
)
from bot.exalate import Project
from bot.ports import Notice
from handlers.ids import COMMAND, INPUT_ACTION, Action, Block, View

Json = dict[str, Any]
MAX_STATIC_OPTIONS = 100
MAX_MESSAGE_BLOCKS = 50
REASON_MAX = 1000
CODE_MAX = 2900  # fits a section with its code fence; Exalate's codes are far shorter

USAGE = (
    f"*Usage*\n"
    f"• `{COMMAND} connect [remote=NAME] [project=KEY] [name=NAME] [local=NAME]` — ask for a "
    "private Script connection; opens a form.\n"
    f"• `{COMMAND} status` — requests awaiting approval and invitations awaiting the partner.\n"
    f"• `{COMMAND} status mine` — your requests, whatever became of them.\n"
    f"• `{COMMAND} status <connection name>` — the history of one request.\n"
    f"• `{COMMAND} cancel <connection name>` — withdraw your request while it awaits approval.\n"
    f"• `{COMMAND} help` — this text."
)


def escape(text: str, limit: int = 2000) -> str:
    """Make user text inert in mrkdwn (no mentions, links or broadcasts), at most ``limit``.

    Escaping can grow text fivefold (``&`` → ``&amp;``), so an over-long text is cut on
    the raw side, where the cut cannot split an entity, and ends with an ellipsis.
    """
    escaped = _escape(text)
    if len(escaped) <= limit:
        return escaped
    kept = size = 0  # the whole text is too long, so this stops before its end
    while size + len(_escape(text[kept])) < limit:
        size += len(_escape(text[kept]))
        kept += 1
    return _escape(text[:kept]) + "…"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int = 3000) -> Json:
    """A plain_text object, cut to Slack's limit for where it goes."""
    return {"type": "plain_text", "text": text[:limit], "emoji": True}


def mrkdwn(text: str) -> Json:
    return {"type": "mrkdwn", "text": text[:3000]}


def section(text: str) -> Json:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> Json:
    return {"type": "context", "elements": [mrkdwn(text)]}


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def project_option(project: Project) -> Json:
    """One select option: ``KEY — Name`` (Slack cuts option text at 75 characters)."""
    return {"text": plain(f"{project.key} — {project.name}", 75), "value": project.key[:150]}


def project_options(projects: Iterable[Project], query: str = "") -> list[Json]:
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
    local: str = "",
    remote: str = "",
    name: str = "",
    description: str = "",
    project: str = "",
    projects: Sequence[Project] | None = None,
) -> Json:
    """The form that mirrors Exalate's "Initiate connection" wizard.

    ``projects`` is the cached project list: up to 100 go into a static select; with
    more, or none cached yet, the select loads options as the person types.
    """
    project_element: Json = {
        "action_id": Action.PROJECT.value,
        "placeholder": plain("Choose a project"),
    }
    chosen = next((p for p in projects or () if p.key == project), None)
    if projects is not None and 0 < len(projects) <= MAX_STATIC_OPTIONS:
        project_element |= {"type": "static_select", "options": project_options(projects)}
        if chosen is not None:
            project_element["initial_option"] = project_option(chosen)
    else:
        project_element |= {"type": "external_select", "min_query_length": 0}
        if project:
            initial = chosen or Project(id="", key=project, name=project)
            project_element["initial_option"] = project_option(initial)
    rule = "A letter first, then letters, digits, _ or -."
    return {
        "type": "modal",
        "callback_id": View.REQUEST.value,
        "title": plain("Exalate connection", 24),
        "submit": plain("Request", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(
                "Ask for a *private* connection in *Script* mode. Once an approver agrees, "
                "you receive the invitation code privately, to send to your partner."
            ),
            _text_input(
                Field.LOCAL,
                "Local instance short name",
                initial=local,
                max_length=SHORT_NAME_MAX,
                hint=f"Your side. {rule}",
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
            {
                "type": "input",
                "block_id": Field.PROJECT.value,
                "label": plain("Jira project for incoming sync"),
                "element": project_element,
            },
        ],
    }


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
            section(
                f"Reject *{escape(request.fields.connection_name)}* for "
                f"{mention(request.requester)}?"
            ),
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
        ],
    }


def paste_modal(request: ConnectionRequest) -> Json:
    """Asks an approver for the code copied from the Exalate console."""
    name = escape(request.fields.connection_name)
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


def _fields(request: ConnectionRequest) -> Json:
    f = request.fields
    return {
        "type": "section",
        "fields": [
            mrkdwn(f"*Requested by*\n{mention(request.requester)}"),
            mrkdwn(f"*Connection name*\n{escape(f.connection_name)}"),
            mrkdwn(f"*Local instance*\n{escape(f.local_short_name)}"),
            mrkdwn(f"*Remote instance*\n{escape(f.remote_short_name)}"),
            mrkdwn(f"*Incoming project*\n{escape(f.project_key)}"),
            mrkdwn("*Type*\nPrivate, Script mode"),
        ],
    }


def _button(
    text: str,
    action: Action,
    request: ConnectionRequest,
    style: str | None = None,
    *,
    bound: bool = False,
) -> Json:
    """A button about ``request``; a ``bound`` one also names the request's fingerprint."""
    value = f"{request.id}:{request.fingerprint}" if bound else str(request.id)
    button: Json = {
        "type": "button",
        "text": plain(text, 75),
        "action_id": action.value,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _outcome(request: ConnectionRequest) -> str:
    """One line saying where the request stands, for the card and for status."""
    by = mention(request.decided_by) if request.decided_by else "an approver"
    match request.status:
        case Status.PENDING_APPROVAL:
            return ":hourglass_flowing_sand: Waiting for approval."
        case Status.INITIATING:
            return f":gear: Approved by {by}. Creating the connection in Exalate…"
        case Status.INVITED if request.error:
            return f":warning: Approved by {by}. Connection created. {escape(request.error)}"
        case Status.INVITED if _unusual_status(request):
            return (
                f":grey_question: Approved by {by}. Connection created; Exalate now reports its "
                f"status as {escape(_unusual_status(request) or '')}."
            )
        case Status.INVITED:
            return (
                f":white_check_mark: Approved by {by}. Connection created; the invitation code "
                f"was sent privately to {mention(request.requester)}. Waiting for the partner "
                "to accept."
            )
        case Status.FAILED:
            return (
                f":x: Approved by {by}, but creating the connection failed: "
                f"{escape(request.error or 'unknown error')}"
            )
        case Status.REJECTED:
            return f":no_entry: Rejected by {by}: {escape(request.reason or '')}"
        case Status.ACTIVE:
            return f":link: Approved by {by}. The partner accepted; the connection is active."
        case Status.DEACTIVATED:
            return f":double_vertical_bar: Approved by {by}. Exalate reports it deactivated."
        case Status.GONE:
            return f":ghost: Approved by {by}. The connection no longer exists in Exalate."
        case Status.EXPIRED:
            return ":hourglass: Expired: nobody decided on it in time."
        case Status.CANCELLED:
            return f":wastebasket: Cancelled by {mention(request.requester)}."
        case _:
            return f"State: {request.status.value}."


def _unusual_status(request: ConnectionRequest) -> str | None:
    """What Exalate reports, verbatim, when it is not the expected PENDING."""
    status = request.exalate_status
    return status if status is not None and status.upper() != "PENDING" else None


def card_text(request: ConnectionRequest) -> str:
    """The notification text of the card (what a phone shows)."""
    return (
        f"Exalate connection request #{request.id} ({escape(request.fields.connection_name)}) "
        f"from {mention(request.requester)}: {request.status.value.replace('_', ' ')}"
    )


def approval_card(request: ConnectionRequest) -> list[Json]:
    """The team-visible card: every field, the state, and the buttons the state allows."""
    blocks: list[Json] = [
        {"type": "header", "text": plain(f"Exalate connection request #{request.id}", 150)},
        _fields(request),
    ]
    if request.fields.description:
        blocks.append(section(f"*Description*\n{escape(request.fields.description)}"))
    blocks.append(context(_outcome(request)))
    if request.status is Status.PENDING_APPROVAL:
        approve = _button("Approve", Action.APPROVE, request, "primary", bound=True)
        approve["confirm"] = {
            "title": plain("Create this connection?", 100),
            "text": plain(
                f"Exalate will create the private Script connection "
                f"{request.fields.connection_name}, and the requester will receive the "
                "invitation code privately.",
                300,
            ),
            "confirm": plain("Approve", 30),
            "deny": plain("Back", 30),
        }
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    approve,
                    _button("Reject", Action.REJECT, request, "danger", bound=True),
                ],
            }
        )
    elif request.status is Status.FAILED:
        retry = _button("Retry", Action.RETRY, request, bound=True)
        blocks.append({"type": "actions", "elements": [retry]})
    elif request.status is Status.INVITED and not request.has_invitation_code:
        paste = _button("Paste invitation code", Action.PASTE_CODE, request)
        blocks.append({"type": "actions", "elements": [paste]})
    elif request.status is Status.INVITED and request.error:
        resend = _button("Resend code", Action.RESEND, request)
        blocks.append({"type": "actions", "elements": [resend]})
    return blocks


def requester_note(request: ConnectionRequest, approval_channel: str) -> str:
    """The DM that keeps the requester informed; never carries the code."""
    name = f"*{escape(request.fields.connection_name)}*"
    match request.status:
        case Status.PENDING_APPROVAL if request.card_ref is None:
            return (
                f"Your request #{request.id} for the connection {name} is saved, but I could "
                f"not post it to <#{approval_channel}> for approval; most likely I am not a "
                "member of that channel. Ask an Exalate admin to invite me there: the card "
                "follows as soon as I can post there."
            )
        case Status.PENDING_APPROVAL:
            return (
                f"Your request #{request.id} for the connection {name} is waiting for "
                f"approval in <#{approval_channel}>. I will message you here when it is decided."
            )
        case Status.INVITED:
            return (
                f"The connection {name} (request #{request.id}) was created, but its "
                "invitation code did not reach me. An approver will copy it from the Exalate "
                "console and send it to you privately."
            )
        case Status.REJECTED:
            by = mention(request.decided_by) if request.decided_by else "An approver"
            return (
                f"Your request #{request.id} for {name} was rejected by {by}.\n"
                f"*Reason:* {escape(request.reason or '')}"
            )
        case Status.FAILED:
            return (
                f"Your request #{request.id} for {name} was approved, but creating the "
                f"connection failed: {escape(request.error or 'unknown error')}\n"
                "Nothing is lost: the approvers can retry it from the card in "
                f"<#{approval_channel}>."
            )
        case Status.EXPIRED:
            return (
                f"Your request #{request.id} for {name} expired: nobody decided on it in time. "
                "You can ask again."
            )
        case Status.CANCELLED:
            return f"You cancelled your request #{request.id} for {name}."
        case Status.ACTIVE:
            return f":tada: Your partner accepted the invitation: the connection {name} is active."
        case Status.DEACTIVATED:
            return f"Exalate reports the connection {name} (request #{request.id}) deactivated."
        case Status.GONE:
            return (
                f"The connection {name} (request #{request.id}) no longer exists in Exalate, "
                "so its invitation cannot be accepted any more."
            )
        case _:
            return f"Your request #{request.id} for {name} is now {request.status.value}."


def requester_message(request: ConnectionRequest, approval_channel: str) -> tuple[str, list[Json]]:
    """The requester's DM: the note, and the button its state allows."""
    text = requester_note(request, approval_channel)
    body = [section(text)]
    if request.status is Status.PENDING_APPROVAL:
        cancel = _button("Cancel request", Action.CANCEL, request)
        cancel["confirm"] = {
            "title": plain("Cancel this request?", 100),
            "text": plain("Approvers will no longer be able to approve it.", 300),
            "confirm": plain("Cancel request", 30),
            "deny": plain("Keep it", 30),
        }
        body.append({"type": "actions", "elements": [cancel]})
    elif request.status in (Status.REJECTED, Status.EXPIRED):
        again = _button("Request again", Action.REREQUEST, request, "primary")
        body.append({"type": "actions", "elements": [again]})
    return text, body


def spent_invitation(request: ConnectionRequest) -> str:
    """What the code's DM says once the code is spent (the code itself is gone)."""
    name = escape(request.fields.connection_name)
    if request.status is Status.ACTIVE:
        return (
            f":white_check_mark: The invitation code for *{name}* was delivered here and the "
            "partner accepted it: the connection is active. The code is no longer stored."
        )
    return (
        f"The invitation code for *{name}* is no longer valid: {_outcome(request)} "
        "The code is no longer stored."
    )


def thread_note(request: ConnectionRequest, notice: Notice) -> str:
    """A reply under the card."""
    name = escape(request.fields.connection_name)
    match notice:
        case Notice.INVITE_REMINDER:
            return (
                f":bell: The partner has not accepted the invitation for *{name}* yet. "
                f"{mention(request.requester)} may want to check with them."
            )
        case Notice.EXALATE_STATUS:
            return (
                f"Exalate reports the status of *{name}* as {escape(request.exalate_status or '')}."
            )
        case _:
            return _outcome(request)


def invite_reminder(request: ConnectionRequest) -> tuple[str, list[Json]]:
    """The requester's nudge, with the code one click away."""
    text = (
        f":bell: Your partner has not accepted the invitation for "
        f"*{escape(request.fields.connection_name)}* yet. If they lost the code, show it "
        "again and send it to them privately."
    )
    body = [section(text)]
    if request.has_invitation_code:
        body.append(
            {"type": "actions", "elements": [_button("Show code", Action.SHOW_CODE, request)]}
        )
    return text, body


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


def invitation_dm(request: ConnectionRequest, code: str) -> tuple[str, list[Json]]:
    """The only message that carries the invitation code. It goes to a DM, never a channel."""
    name = escape(request.fields.connection_name)
    intro = (
        f":key: The connection *{name}* was created in Exalate. Here is its invitation code, "
        "for your partner only:"
    )
    steps = (
        "*Next step for the partner:* in their Exalate console, *Connections → Accept "
        "invitation*, paste the code, choose the project for incoming sync and confirm. "
        "Send the code privately (not in a shared channel); I will tell you when they accept."
    )
    blocks = [section(intro), section(f"```{code}```"), section(steps)]
    return f"Invitation code for the connection {name}", blocks


def resend_outcome(request: ConnectionRequest) -> str:
    """What the person who pressed Resend code learns."""
    if request.error:
        return f"Still not delivered: {escape(request.error)}"
    return f"Sent the invitation code to {mention(request.requester)} by DM."


def explain(error: ApprovalError) -> str:
    """Why an action changed nothing, in words for the person who tried it."""
    if isinstance(error, Conflict):
        request = error.request
        name = escape(request.fields.connection_name)
        return f"Nothing changed; request #{request.id} ({name}) has moved on. {_outcome(request)}"
    return escape(str(error))


def _age(created: datetime, now: datetime) -> str:
    seconds = max(0, int((now - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


_STATE_WORDS: Mapping[Status, str] = {
    Status.PENDING_APPROVAL: "awaiting approval",
    Status.INITIATING: "being created",
    Status.FAILED: "failed, can be retried",
    Status.INVITED: "awaiting the partner",
    Status.ACTIVE: "active",
    Status.REJECTED: "rejected",
    Status.CANCELLED: "cancelled",
    Status.EXPIRED: "expired",
    Status.DEACTIVATED: "deactivated",
    Status.GONE: "gone from Exalate",
}
LIST_MAX = MAX_MESSAGE_BLOCKS - 3  # rows, leaving room for a title and a "more" line
HOME_LIST_MAX = 15  # four lists of 15 rows stay within a Home tab's 100 blocks


def request_line(request: ConnectionRequest, now: datetime, viewer: str) -> Json:
    """One request in a list; its requester gets a Show code button while it is pending."""
    state = _STATE_WORDS[request.status]
    if request.status is Status.INVITED and (unusual := _unusual_status(request)):
        state = f"Exalate says {escape(unusual)}"
    since = (
        f"invited {_age(request.updated_at, now)} ago"
        if request.status is Status.INVITED
        else f"{_age(request.created_at, now)} ago"
    )
    line = section(
        f"*{escape(request.fields.connection_name)}* · {state} · requested by "
        f"{mention(request.requester)} · {since} · #{request.id}"
    )
    if (
        viewer == request.requester
        and request.status is Status.INVITED
        and request.has_invitation_code
    ):
        line["accessory"] = _button("Show code", Action.SHOW_CODE, request)
    return line


def request_list(title: str, page: Page, now: datetime, viewer: str, *, empty: str) -> list[Json]:
    """A titled list that says how many it left out instead of outgrowing Slack's limits."""
    blocks: list[Json] = [section(f"*{title}* ({page.total})" if page.total else f"*{title}*")]
    if not page.items:
        return [*blocks, context(empty)]
    blocks += [request_line(request, now, viewer) for request in page.items]
    if page.total > len(page.items):
        blocks.append(context(f"…and {page.total - len(page.items)} more."))
    return blocks


def status_message(
    page: Page, now: datetime, viewer: str, *, mine: bool = False
) -> tuple[str, list[Json]]:
    """``/exalate status`` and ``status mine``, within one message however many there are."""
    if mine:
        title, empty = "Your Exalate connection requests", "You have not asked for any yet."
    else:
        title = "Pending Exalate connections"
        empty = "Nothing is pending: no request awaits approval and no invitation awaits a partner."
    if not page.total:
        return empty, [section(empty)]
    return f"{title}: {page.total}", request_list(title, page, now, viewer, empty=empty)


def _who(actor: str) -> str:
    return {"exalate": "Exalate", "bot": "the bot"}.get(actor) or mention(actor)


def history_message(
    request: ConnectionRequest, events: Sequence[AuditEvent]
) -> tuple[str, list[Json]]:
    """``/exalate status <name>``: what happened to the request, when, and by whom."""
    name = escape(request.fields.connection_name)
    lines = [
        f"• {event.at:%Y-%m-%d %H:%M} UTC: {escape(event.note or event.to_status.value)} "
        f"by {_who(event.actor)}"
        for event in events
    ]
    if len(lines) > LIST_MAX:  # keep the beginning and the latest; say what is left out
        head, tail = lines[:5], lines[-(LIST_MAX - 6) :]
        lines = [*head, f"…{len(lines) - len(head) - len(tail)} events left out…", *tail]
    blocks = [
        section(f"*History of {name}* (request #{request.id}, now {_STATE_WORDS[request.status]})"),
        *(section(line) for line in lines),
    ]
    return f"History of {name}", blocks


def home_view(
    *,
    viewer: str,
    now: datetime,
    mine: Page,
    awaiting_me: Page | None,
    invitations: Page,
    accepted: Page,
) -> Json:
    """The App Home dashboard; ``awaiting_me`` is None for people who are not approvers."""
    blocks: list[Json] = [{"type": "header", "text": plain("Exalate connections", 150)}]
    sections: list[tuple[str, Page | None, str]] = [
        ("Your requests", mine, f"Nothing yet. Ask with `{COMMAND} connect`."),
        ("Waiting for your approval", awaiting_me, "Nothing waits for you."),
        ("Pending invitations", invitations, "No invitation awaits a partner."),
        ("Recently accepted", accepted, "No partner accepted in the last two weeks."),
    ]
    for title, page, empty in sections:
        if page is not None:
            blocks += [{"type": "divider"}, *request_list(title, page, now, viewer, empty=empty)]
    return {"type": "home", "callback_id": View.HOME.value, "blocks": blocks}
