"""The approval card in the approvers' channel, and the notes in its thread."""

from __future__ import annotations

from dataclasses import replace

from bot.approvals.messages import Notice
from bot.approvals.model import OPEN_STATUSES, CodeDelivery, ConnectionRequest, Problem, Status
from bot.approvals.routes import Rule
from handlers.blocks.elements import actions, button, confirm
from handlers.blocks.text import (
    NAMING_SITES,
    Json,
    connection_name,
    context,
    escape,
    mention,
    mention_any,
    mrkdwn,
    plain,
    user_text,
)
from handlers.blocks.vocabulary import headline, problem
from handlers.ids import Action


def _fields(request: ConnectionRequest) -> Json:
    f = request.fields
    fields: Json = {
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
    if NAMING_SITES.get():
        fields["fields"].insert(1, mrkdwn(f"*Site*\n{escape(f.site)}"))
    return fields


def card_text(request: ConnectionRequest) -> str:
    """The notification text of the card (what a phone shows)."""
    return (
        f"Exalate connection request #{request.id} ({connection_name(request)}) "
        f"from {mention(request.requester)}: {request.status.value.replace('_', ' ')}"
    )


def approval_card(request: ConnectionRequest) -> list[Json]:
    """The team-visible card: every field, the state, and the buttons the state allows."""
    blocks: list[Json] = [
        {"type": "header", "text": plain(f"Exalate connection request #{request.id}", 150)},
        _fields(request),
    ]
    blocks += user_text("*Description*, as the requester wrote it:", request.fields.description)
    blocks.append(context(_headline(request)))
    if request.status is Status.REJECTED and request.reason:
        blocks += user_text("*Reason*, as the approver wrote it:", request.reason)
    if request.route is not None and request.status is Status.PENDING_APPROVAL:
        blocks.append(context(who_decides(request, request.route)))
    if request.status is Status.PENDING_APPROVAL:
        sure = confirm(
            "Create this connection?",
            f"Exalate will create the private Script connection "
            f"{request.fields.connection_name}, and the requester will receive the "
            "invitation code privately.",
            yes="Approve",
            no="Back",
        )
        approve = button("Approve", Action.APPROVE, request, "primary", bound=True, confirm=sure)
        reject = button("Reject", Action.REJECT, request, "danger", bound=True)
        blocks.append(actions(approve, reject))
    elif request.status is Status.FAILED:
        retry = button("Retry", Action.RETRY, request, bound=True)
        reject = button("Reject", Action.REJECT, request, "danger", bound=True)
        blocks.append(actions(retry, reject))
    elif request.code_delivery is CodeDelivery.NEVER_RECEIVED:
        blocks.append(actions(button("Paste invitation code", Action.PASTE_CODE, request)))
    elif request.code_delivery is CodeDelivery.UNDELIVERED:
        blocks.append(actions(button("Resend code", Action.RESEND, request)))
    if request.problem is Problem.REQUESTER_GONE and request.status in OPEN_STATUSES:
        if request.status is not Status.INVITED:  # an invitation's headline says it
            blocks.append(context(problem(request)))
        blocks.append(actions(button("Hand over", Action.HAND_OVER, request)))
    return blocks


def _headline(request: ConnectionRequest) -> str:
    """The card's line for the state. A rejection's ends at who rejected: its reason
    follows as the approver's words (``user_text``), never inside the bot's line."""
    if request.status is Status.REJECTED and request.reason:
        return headline(replace(request, reason=None)).removesuffix(": ") + "."
    return headline(request)


def who_decides(request: ConnectionRequest, rule: Rule) -> str:
    """Who decides a routed request, and how far it is: "1 of 2 approvals: <@bob>
    approved; waiting for @support-leads"."""
    escalated = request.escalated_at is not None
    waiting = mention_any(rule.deciders(escalated=escalated)) + (
        " (escalated)" if escalated else ""
    )
    if rule.approvals == 1:
        return f"Decided by {waiting}"
    progress = f"{len(request.approved_by)} of {rule.approvals} approvals"
    if request.approved_by:
        progress += f": {', '.join(mention(i) for i in request.approved_by)} approved"
    return f"{progress}; waiting for {waiting}"


def approval_counted(request: ConnectionRequest, rule: Rule) -> str:
    """What an approver reads, privately, when their approval is not the last needed."""
    left = rule.approvals - len(request.approved_by)
    more = "1 more approval" if left == 1 else f"{left} more approvals"
    return (
        f"Your approval of *{connection_name(request)}* is counted: "
        f"{len(request.approved_by)} of {rule.approvals}. The connection is created after "
        f"{more} from a different approver ({mention_any(rule.approvers)})."
    )


def thread_note(request: ConnectionRequest, notice: Notice) -> str:
    """A reply under the card."""
    name = connection_name(request)
    match notice:
        case Notice.INVITE_REMINDER:
            return (
                f":bell: The partner has not accepted the invitation for *{name}* yet. "
                f"{mention(request.requester)} may want to check with them."
            )
        case Notice.CONNECTION_APPEARED:
            return (
                f":white_check_mark: *{name}* now exists in Exalate. Paste its invitation code "
                "with the button on the card, and it goes to the requester privately."
            )
        case Notice.APPROVED if request.approved_by:
            needed = request.route.approvals if request.route is not None else 1
            return (
                f":heavy_check_mark: {mention(request.approved_by[-1])} approved "
                f"({len(request.approved_by)} of {needed})."
            )
        case Notice.ESCALATED if request.route is not None:
            return (
                f":rotating_light: {mention_any(request.route.escalate_to)}: *{name}* has "
                "waited for a decision longer than its route allows; you may approve or "
                "reject it too, on the card above."
            )
        case Notice.EXALATE_STATUS:
            return (
                f"Exalate reports the status of *{name}* as {escape(request.exalate_status or '')}."
            )
        case _:
            return headline(request)
