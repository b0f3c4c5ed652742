"""Block Kit builders: pure functions from domain values to Slack JSON, no I/O.

One module per surface: ``cards`` (the approval card and its thread), ``messages`` (the
requester's DMs), ``forms`` (modals), ``lists`` (status, history, App Home) and ``replies``
(what a click that changed nothing is told). They share ``vocabulary`` (what each state
means to a person, and who acted), ``elements`` (buttons and their confirm dialogs) and
``text`` (pieces and escaping). Listeners use them through this package, as
``blocks.<name>``.
"""

from handlers.blocks.cards import approval_card, approval_counted, card_text, thread_note
from handlers.blocks.forms import (
    CODE_MAX,
    REASON_MAX,
    code_modal,
    hand_over_modal,
    notice_modal,
    paste_modal,
    project_options,
    reject_modal,
    request_modal,
)
from handlers.blocks.lists import (
    HOME_LIST_MAX,
    LIST_MAX,
    STATUS_LIST_MAX,
    history_message,
    home_view,
    shows_code_to,
    status_message,
    summary_message,
)
from handlers.blocks.messages import (
    USAGE,
    console_guide,
    invitation_dm,
    invite_reminder,
    requester_message,
    spent_invitation,
)
from handlers.blocks.replies import explain, resend_outcome
from handlers.blocks.text import MAX_MESSAGE_BLOCKS, Json, escape, section

__all__ = [
    "CODE_MAX",
    "HOME_LIST_MAX",
    "LIST_MAX",
    "MAX_MESSAGE_BLOCKS",
    "REASON_MAX",
    "STATUS_LIST_MAX",
    "USAGE",
    "Json",
    "approval_card",
    "approval_counted",
    "card_text",
    "code_modal",
    "console_guide",
    "escape",
    "explain",
    "hand_over_modal",
    "history_message",
    "home_view",
    "invitation_dm",
    "invite_reminder",
    "notice_modal",
    "paste_modal",
    "project_options",
    "reject_modal",
    "request_modal",
    "requester_message",
    "resend_outcome",
    "section",
    "shows_code_to",
    "spent_invitation",
    "status_message",
    "summary_message",
    "thread_note",
]
