"""The interactive pieces the card, the DMs and the lists share: buttons about a request,
the row that holds them, and the dialog a button asks before it acts."""

from __future__ import annotations

from bot.approvals.model import ConnectionRequest
from handlers.blocks.text import Json, plain
from handlers.ids import Action


def button(
    text: str,
    action: Action,
    request: ConnectionRequest,
    style: str | None = None,
    *,
    bound: bool = False,
    confirm: Json | None = None,
) -> Json:
    """A button about ``request``. A ``bound`` one also carries the request's fingerprint,
    so a click on a card drawn before the request changed is refused; ``confirm`` is
    asked before the click is sent."""
    value = f"{request.id}:{request.fingerprint}" if bound else str(request.id)
    element: Json = {
        "type": "button",
        "text": plain(text, 75),
        "action_id": action.value,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def actions(*elements: Json) -> Json:
    """A row of buttons."""
    return {"type": "actions", "elements": list(elements)}


def confirm(title: str, text: str, *, yes: str, no: str) -> Json:
    """The dialog Slack shows before sending a click that cannot be taken back."""
    return {
        "title": plain(title, 100),
        "text": plain(text, 300),
        "confirm": plain(yes, 30),
        "deny": plain(no, 30),
    }
