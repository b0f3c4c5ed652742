"""The approval card in the approvers' channel, the notes in its thread, and the
explanations a click gets when it changes nothing."""

from __future__ import annotations

from bot.approvals.errors import ApprovalError, Conflict
from bot.approvals.model import CodeDelivery, ConnectionRequest, Status
from bot.ports import Notice
from handlers.blocks.elements import actions, button, confirm
from handlers.blocks.text import (
    Json,
    context,
    escape,
    mention,
    mrkdwn,
    plain,
    section,
)
from handlers.ids import Action


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


# An invited request whose code has not reached the requester; ``error`` says why.
_CODE_TROUBLE = (CodeDelivery.NEVER_RECEIVED, CodeDelivery.UNDELIVERED)


def outcome(request: ConnectionRequest) -> str:
    """One line saying where the request stands, for the card and for status."""
    by = mention(request.decided_by) if request.decided_by else "an approver"
    match request.status:
        case Status.PENDING_APPROVAL:
            return ":hourglass_flowing_sand: Waiting for approval."
        case Status.ASSISTED:
            return (
                f":wrench: Approved by {by}. The connection is being created by hand in the "
                f"Exalate console; {by} has the values. Paste its invitation code here once it "
                "exists: it goes to the requester privately."
            )
        case Status.INITIATING:
            return f":gear: Approved by {by}. Creating the connection in Exalate…"
        case Status.INVITED if request.code_delivery in _CODE_TROUBLE:
            return f":warning: Approved by {by}. Connection created. {escape(request.error or '')}"
        case Status.INVITED if unusual_status(request):
            return (
                f":grey_question: Approved by {by}. Connection created; Exalate now reports its "
                f"status as {escape(unusual_status(request) or '')}."
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


def unusual_status(request: ConnectionRequest) -> str | None:
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
    blocks.append(context(outcome(request)))
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
    return blocks


def thread_note(request: ConnectionRequest, notice: Notice) -> str:
    """A reply under the card."""
    name = escape(request.fields.connection_name)
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
        case Notice.EXALATE_STATUS:
            return (
                f"Exalate reports the status of *{name}* as {escape(request.exalate_status or '')}."
            )
        case _:
            return outcome(request)


def resend_outcome(request: ConnectionRequest) -> str:
    """What the person who pressed Resend code learns."""
    if request.code_delivery is CodeDelivery.UNDELIVERED:
        return f"Still not delivered: {escape(request.error or '')}"
    return f"Sent the invitation code to {mention(request.requester)} by DM."


def explain(error: ApprovalError) -> str:
    """Why an action changed nothing, in words for the person who tried it."""
    if isinstance(error, Conflict):
        request = error.request
        name = escape(request.fields.connection_name)
        return f"Nothing changed; request #{request.id} ({name}) has moved on. {outcome(request)}"
    return escape(str(error))
