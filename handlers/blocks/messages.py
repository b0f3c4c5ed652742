"""What people read in their DM with the bot: the requester's notes and invitation code,
the approver's guide to the Exalate console, and the usage text.

The invitation code appears in exactly one builder, ``invitation_dm``; its DM and the
Show code modal are the only places it is ever sent. It is shown whole, however long,
over as many code blocks as it needs, and escaped: a code is checked before it is stored,
and what it is drawn from cannot mention or link even so.
"""

from __future__ import annotations

from bot.approvals.model import ConnectionRequest, Status
from handlers.blocks.elements import actions, button, confirm
from handlers.blocks.text import (
    NAMING_SITES,
    Json,
    connection_name,
    escape,
    escaped_pieces,
    section,
    user_text,
)
from handlers.blocks.vocabulary import headline, note
from handlers.ids import COMMAND, Action

USAGE = (
    f"*Usage*\n"
    f"• `{COMMAND} connect [site=SITE] [remote=NAME] [project=KEY] [name=NAME] [local=NAME]` "
    "— ask for a private Script connection; opens a form.\n"
    f"• `{COMMAND} status [site=SITE]` — requests awaiting approval and invitations awaiting "
    "the partner.\n"
    f"• `{COMMAND} status mine` — your requests, whatever became of them.\n"
    f"• `{COMMAND} status <connection name> [site=SITE]` — the history of one request.\n"
    f"• `{COMMAND} cancel <connection name> [site=SITE]` — withdraw your request while it "
    "awaits approval.\n"
    f"• `{COMMAND} health [site=SITE]` — sync health: each site's node, connections, sync "
    "queues and open incidents.\n"
    f"• `{COMMAND} help` — this text.\n"
    "`site=` names one Exalate node, where the bot serves several."
)


def requester_message(request: ConnectionRequest, approval_channel: str) -> tuple[str, list[Json]]:
    """The requester's DM: the note, and the button its state allows."""
    text = note(request, approval_channel)
    body = [section(text)]
    if request.status is Status.REJECTED and request.reason:
        body += user_text("*Reason*", request.reason)  # the approver's words, as theirs
    if request.status is Status.PENDING_APPROVAL:
        sure = confirm(
            "Cancel this request?",
            "Approvers will no longer be able to approve it.",
            yes="Cancel request",
            no="Keep it",
        )
        body.append(actions(button("Cancel request", Action.CANCEL, request, confirm=sure)))
    elif request.status in (Status.REJECTED, Status.EXPIRED) or request.name_taken:
        body.append(actions(button("Request again", Action.REREQUEST, request, "primary")))
    return text, body


def spent_invitation(request: ConnectionRequest) -> str:
    """What the code's DM says once the code is spent (the code itself is gone)."""
    name = connection_name(request)
    if request.status is Status.ACTIVE:
        return (
            f":white_check_mark: The invitation code for *{name}* was delivered here and the "
            "partner accepted it: the connection is active. The code is no longer stored."
        )
    return (
        f"The invitation code for *{name}* is no longer valid: {headline(request)} "
        "The code is no longer stored."
    )


def invite_reminder(request: ConnectionRequest) -> tuple[str, list[Json]]:
    """The requester's nudge, with the code one click away."""
    text = (
        f":bell: Your partner has not accepted the invitation for "
        f"*{connection_name(request)}* yet. If they lost the code, show it "
        "again and send it to them privately."
    )
    body = [section(text)]
    if request.has_invitation_code:
        body.append(actions(button("Show code", Action.SHOW_CODE, request)))
    return text, body


CODE_PIECE = 2900
"""The most characters of a code one block shows: a section holds 3,000 with its fence."""


def code_sections(code: str) -> list[Json]:
    """``code`` escaped, in code blocks of at most ``CODE_PIECE`` characters each, in
    order: a cut code would be useless, and a section longer than Slack allows is
    refused."""
    return [section(f"```{piece}```") for piece in escaped_pieces(code, CODE_PIECE)]


def invitation_dm(request: ConnectionRequest, code: str) -> tuple[str, list[Json]]:
    """The only message that carries the invitation code. It goes to a DM, never a channel."""
    name = connection_name(request)
    intro = (
        f":key: The connection *{name}* was created in Exalate. Here is its invitation code, "
        "for your partner only:"
    )
    steps = (
        "*Next step for the partner:* in their Exalate console, *Connections → Accept "
        "invitation*, paste the code, choose the project for incoming sync and confirm. "
        "Send the code privately (not in a shared channel); I will tell you when they accept."
    )
    blocks = [section(intro), *code_sections(code), section(steps)]
    return f"Invitation code for the connection {name}", blocks


def _on_site(request: ConnectionRequest) -> str:
    site = request.fields.site
    return f"On the site *{escape(site)}*: " if NAMING_SITES.get() else ""


def console_guide(request: ConnectionRequest) -> tuple[str, list[Json]]:
    """The approver's DM in assisted mode: the wizard's steps with this request's values."""
    f = request.fields
    steps = "\n".join(
        (
            f"1. {_on_site(request)}Jira administration → Apps → Exalate → *Connections* → "
            "*Initiate connection*.",
            "2. Choose *I don't have a URL*, then the *Script* mode, then *Next*.",
            f"3. Local instance short name: `{escape(f.local_short_name)}`",
            f"4. Destination instance short name: `{escape(f.remote_short_name)}`",
            f"5. Connection name: `{escape(f.connection_name)}`",
            f"6. Description: {escape(f.description) or '(empty)'}",
            f"7. Project for the incoming sync: `{escape(f.project_key)}`, then *Next*.",
            "8. *Copy Invitation Code*, then press *Paste invitation code* below.",
        )
    )
    text = (
        f"Please create the connection *{connection_name(request)}* (request #{request.id}) "
        "in the Exalate console: this Exalate cannot be asked to by its API."
    )
    paste = button("Paste invitation code", Action.PASTE_CODE, request, "primary")
    body = [section(text), section(steps), actions(paste)]
    return text, body
