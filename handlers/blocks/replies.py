"""What a person who clicked is told privately when the click did not do what they
hoped: the action changed nothing, or the code they resent still did not arrive."""

from __future__ import annotations

from bot.approvals.errors import ApprovalError, Conflict
from bot.approvals.model import CodeDelivery, ConnectionRequest, Status
from handlers.blocks.text import connection_name, escape, mention
from handlers.blocks.vocabulary import headline, problem


def explain(error: ApprovalError) -> str:
    """Why an action changed nothing, in words for the person who tried it."""
    if isinstance(error, Conflict):
        request = error.request
        name = connection_name(request)
        # Anyone may be asking, the requester too: Exalate's own words (which may name
        # internal addresses) stay on the approvers' card.
        now = _FAILED if request.status is Status.FAILED else headline(request)
        return f"Nothing changed; request #{request.id} ({name}) has moved on. {now}"
    return escape(str(error))


_FAILED = ":x: Creating the connection failed; the approvers' card says why."


def resend_outcome(request: ConnectionRequest) -> str:
    """What the person who pressed Resend code learns."""
    if request.code_delivery is CodeDelivery.UNDELIVERED:
        return f"Still not delivered: {problem(request)}"
    return (
        f"Sending the invitation code to {mention(request.requester)} by DM; the card says "
        "when it arrives."
    )
