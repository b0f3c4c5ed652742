"""What each state of a request means to a person, and the names of who acted.

One entry per status, worded for where it is read: ``headline``, the card's line (also
in its thread, in the spent code's DM and in the answer to a click that came too late);
``note``, the requester's DM; ``state``, a few words in a list or a sentence ("… is
awaiting approval"). A few sub-states are worded differently (``headline``, ``note`` and
``list_state`` choose); they follow the table. Templates name their slots (``{by}``,
``{name}``, …); ``_slots`` fills them, escaping what people typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.approvals.model import (
    BOT_ACTOR,
    EXALATE_ACTOR,
    CodeDelivery,
    ConnectionRequest,
    Problem,
    Status,
)
from handlers.blocks.text import connection_name, escape, mention


@dataclass(frozen=True, slots=True)
class Words:
    """One status, as the card, the requester's DM and a list say it."""

    state: str
    headline: str
    note: str = "Your request #{id} for {name} is now {state}."


WORDS: Mapping[Status, Words] = {
    Status.PENDING_APPROVAL: Words(
        state="awaiting approval",
        headline=":hourglass_flowing_sand: Waiting for approval.",
        note=(
            "Your request #{id} for the connection {name} is waiting for approval in "
            "{channel}. I will message you here when it is decided."
        ),
    ),
    Status.INITIATING: Words(
        state="being created",
        headline=":gear: Approved by {by}. Creating the connection in Exalate…",
    ),
    Status.ASSISTED: Words(
        state="being created in the Exalate console",
        headline=(
            ":wrench: Approved by {by}. The connection is being created by hand in the "
            "Exalate console; {by} has the values. Paste its invitation code here once it "
            "exists: it goes to the requester privately."
        ),
    ),
    Status.INVITED: Words(
        state="awaiting the partner",
        headline=(
            ":white_check_mark: Approved by {by}. Connection created; the invitation code was "
            "sent privately to {requester}. Waiting for the partner to accept."
        ),
    ),
    Status.FAILED: Words(
        state="failed, can be retried",
        headline=":x: Approved by {by}, but creating the connection failed: {error}",
        note=(
            "Your request #{id} for {name} was approved, but creating the connection failed: "
            "{error}\nNothing is lost: the approvers can retry it from the card in {channel}."
        ),
    ),
    Status.REJECTED: Words(
        state="rejected",
        headline=":no_entry: Rejected by {by}: {reason}",
        # The reason follows the note as the approver's words (``requester_message``).
        note="Your request #{id} for {name} was rejected by {by}.",
    ),
    Status.CANCELLED: Words(
        state="cancelled",
        headline=":wastebasket: Cancelled by {requester}.",
        note="You cancelled your request #{id} for {name}.",
    ),
    Status.EXPIRED: Words(
        state="expired",
        headline=":hourglass: Expired: nobody decided on it in time.",
        note=(
            "Your request #{id} for {name} expired: nobody decided on it in time. "
            "You can ask again."
        ),
    ),
    Status.ACTIVE: Words(
        state="active",
        headline=":link: Approved by {by}. The partner accepted; the connection is active.",
        note=":tada: Your partner accepted the invitation: the connection {name} is active.",
    ),
    Status.DEACTIVATED: Words(
        state="deactivated",
        headline=":double_vertical_bar: Approved by {by}. Exalate reports it deactivated.",
        note="Exalate reports the connection {name} (request #{id}) deactivated.",
    ),
    Status.GONE: Words(
        state="gone from Exalate",
        headline=":ghost: Approved by {by}. The connection no longer exists in Exalate.",
        note=(
            "The connection {name} (request #{id}) no longer exists in Exalate, so its "
            "invitation cannot be accepted any more."
        ),
    ),
}

# Sub-states worded apart from their status.
CARD_NOT_POSTED_NOTE = (  # pending approval, but the channel refused the card
    "Your request #{id} for the connection {name} is saved, but I could not post it to "
    "{channel} for approval: {why}. Ask an Exalate admin to {fix}: the card follows as "
    "soon as I can post there, without you asking again."
)
# Why the approvals channel refused the card, and what an admin does about it.
CARD_REFUSALS: Mapping[str, tuple[str, str]] = {
    "is_archived": ("that channel is archived", "unarchive it, or point me at another one"),
    "is_inactive": ("that channel is archived", "unarchive it, or point me at another one"),
    "not_in_channel": ("I am not a member of that channel", "invite me there"),
    "channel_not_found": (
        "I cannot see that channel (it is private and I am not in it, or it is gone)",
        "invite me there, or point me at another channel",
    ),
}
CARD_REFUSED_SOMEHOW = ("Slack refused it", "look at `exalate-bot doctor`")
NAME_TAKEN_NOTE = (  # failed, because Exalate has a connection of that name that is not ours
    "Your request #{id} for {name} was approved, but Exalate already has a connection of "
    "that name that this request did not create, so it cannot be yours. Ask again under "
    "another name: *Request again* opens the form with your answers."
)
CODE_NEVER_RECEIVED_NOTE = (  # invited, and the bot has no code to send
    "The connection {name} (request #{id}) was created, but its invitation code did not "
    "reach me. An approver will copy it from the Exalate console and send it to you privately."
)
CODE_TROUBLE_HEADLINE = (  # invited, and the code has not reached the requester; error says why
    ":warning: Approved by {by}. Connection created. {error}"
)
EXALATE_SAYS_HEADLINE = (  # invited, and Exalate reports a status other than PENDING
    ":grey_question: Approved by {by}. Connection created; Exalate now reports its status "
    "as {exalate_status}."
)
EXALATE_SAYS_STATE = "Exalate says {exalate_status}"
CONSOLE_AFTER_REFUSAL_HEADLINE = (  # assisted, because Exalate did not take the create call
    ":wrench: Approved by {by}. {error} {by} has the values. Paste its invitation code "
    "here once it exists: it goes to the requester privately."
)

# What each kind of problem means; ``{detail}`` is what Exalate or Slack said of it.
PROBLEMS: Mapping[Problem, str] = {
    Problem.EXALATE: "{detail}",
    Problem.NAME_TAKEN: (
        "Exalate already has a connection named {plain_name} that this request did not "
        "create; reject this request and ask again under another name."
    ),
    Problem.CODE_NOT_RECEIVED: (
        "Exalate has this connection, but its invitation code never reached the bot (the "
        "answer to the create call was lost). An approver can copy the code from the "
        "Exalate console (Connections → {plain_name}) and use Paste invitation code: it "
        "then goes to the requester privately."
    ),
    Problem.INTERRUPTED: (
        "The bot stopped while creating this connection, and Exalate has no connection by "
        "this name: nothing was created. Retry creates it."
    ),
    Problem.UNDELIVERED: (
        "The invitation code could not be sent to the requester by DM ({detail}). It is "
        "stored encrypted; use Resend code once they can receive DMs."
    ),
    Problem.CARD_NOT_POSTED: "The approvals channel refused the card ({detail}).",
    Problem.REQUESTER_GONE: (
        "The requester {requester} has left the workspace (deactivated): nothing goes to "
        "them. An approver can hand the request over to someone else."
    ),
    Problem.CREATE_REFUSED: (
        "Exalate refused to let the bot create connections, because of the bot's "
        "credentials or its Jira user's rights: {detail} Retry fails the same way until an "
        "Exalate admin fixes that setting; after that, Retry creates the connection."
    ),
    Problem.CREATE_NOT_TAKEN: (
        "Exalate did not take the bot's create call, so the connection is created by hand "
        "in the Exalate console instead. {detail} To send every request of this site "
        'there from the start, set `initiation = "assisted"` under `[sites.{site}]` in '
        "exalate-bot.toml, or `EXALATE_INITIATION=assisted` where the bot has no such file."
    ),
}
CODE_REFUSED = (  # code not received: Exalate's answer carried one that is not a code
    "Exalate created this connection, but the invitation code in its answer is not one "
    "({detail}), so the bot sent it to nobody. Check the connection in the Exalate console "
    "(Connections → {plain_name}): copy its invitation code there and use Paste invitation "
    "code, and it goes to the requester privately. If the connection is not what you "
    "expect, delete it there: the bot then closes the request."
)
_FOR_APPROVERS = frozenset({Problem.EXALATE, Problem.CREATE_REFUSED, Problem.CREATE_NOT_TAKEN})
"""Problems whose detail is Exalate's own words, and the bot's settings: the card only."""
# Exalate's own words are for the approvers (they may name internal addresses, a login
# page the call was sent to, and the bot's Jira account and settings); the requester
# learns, in plain words, where to read them.
EXALATE_PROBLEM_FOR_REQUESTER = (
    "Exalate did not create it; the approvers see its answer on the card."
)


def problem(request: ConnectionRequest, *, for_requester: bool = False) -> str:
    """The request's problem in words, escaped; a sentence stored by an older version
    as it is."""
    kind = request.problem
    if for_requester and (kind is None or kind in _FOR_APPROVERS):
        return EXALATE_PROBLEM_FOR_REQUESTER  # an older row's sentence is Exalate's too
    if kind is None:
        return escape(request.error or "unknown error")
    template = PROBLEMS[kind]
    if kind is Problem.CODE_NOT_RECEIVED and request.error_detail:
        template = CODE_REFUSED
    return template.format(
        detail=escape(request.error_detail or "no detail"),
        plain_name=escape(request.fields.connection_name),
        requester=mention(request.requester),
        site=escape(request.fields.site),
    )


def headline(request: ConnectionRequest) -> str:
    """One line saying where the request stands: the card's, and its thread's."""
    template = WORDS[request.status].headline
    if request.status is Status.ASSISTED and request.problem is Problem.CREATE_NOT_TAKEN:
        template = CONSOLE_AFTER_REFUSAL_HEADLINE
    if request.status is Status.INVITED:
        if request.code_delivery in (CodeDelivery.NEVER_RECEIVED, CodeDelivery.UNDELIVERED):
            template = CODE_TROUBLE_HEADLINE
        elif unusual_status(request):
            template = EXALATE_SAYS_HEADLINE
    return template.format_map(_slots(request))


def note(request: ConnectionRequest, approval_channel: str) -> str:
    """What the requester reads in their DM about the request; never the code."""
    template = WORDS[request.status].note
    if request.status is Status.PENDING_APPROVAL and request.card_ref is None:
        template = CARD_NOT_POSTED_NOTE
    elif request.status is Status.FAILED and request.name_taken:
        template = NAME_TAKEN_NOTE
    elif request.status is Status.INVITED and request.code_delivery is CodeDelivery.NEVER_RECEIVED:
        template = CODE_NEVER_RECEIVED_NOTE
    why, fix = CARD_REFUSALS.get(request.error_detail or "", CARD_REFUSED_SOMEHOW)
    slots = _slots(request, approval_channel, for_requester=True) | {"why": why, "fix": fix}
    return template.format_map(slots)


def list_state(request: ConnectionRequest) -> str:
    """The state in a list's row: what Exalate says, when it says something unexpected."""
    if request.status is Status.INVITED and unusual_status(request):
        return EXALATE_SAYS_STATE.format_map(_slots(request))
    return WORDS[request.status].state


def unusual_status(request: ConnectionRequest) -> str | None:
    """What Exalate reports, verbatim, when it is not the expected PENDING."""
    status = request.exalate_status
    return status if status is not None and status.upper() != "PENDING" else None


def who(actor: str | None) -> str:
    """The name of whoever acted: a person's mention, Exalate, or the bot. None is a
    decision whose approver is not recorded."""
    if actor is None:
        return "an approver"
    return {EXALATE_ACTOR: "Exalate", BOT_ACTOR: "the bot"}.get(actor) or mention(actor)


def _slots(
    request: ConnectionRequest, approval_channel: str = "", *, for_requester: bool = False
) -> dict[str, str]:
    """The values templates may name, people's text escaped."""
    return {
        "id": str(request.id),
        "name": f"*{connection_name(request)}*",
        "by": who(request.decided_by),
        "requester": mention(request.requester),
        "channel": f"<#{approval_channel}>",
        "state": WORDS[request.status].state,
        "error": problem(request, for_requester=for_requester),
        "reason": escape(request.reason or ""),
        "exalate_status": escape(request.exalate_status or ""),
    }
