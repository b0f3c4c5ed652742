"""Every Slack identifier the bot uses, in one place.

Block builders and listeners both read these, so a renamed id cannot leave a button
that no listener answers.
"""

from __future__ import annotations

from enum import StrEnum

COMMAND = "/exalate"
INPUT_ACTION = "input"  # the action_id of every input element; the block_id tells them apart


class Action(StrEnum):
    """``action_id`` of interactive elements."""

    APPROVE = "exalate_approve"
    REJECT = "exalate_reject"
    RETRY = "exalate_retry"
    RESEND = "exalate_resend_code"
    CANCEL = "exalate_cancel"
    REREQUEST = "exalate_request_again"
    SHOW_CODE = "exalate_show_code"
    PASTE_CODE = "exalate_paste_code"
    HAND_OVER = "exalate_hand_over"
    PROJECT = "exalate_project"
    INCIDENT_ACK = "exalate_incident_ack"
    INCIDENT_SNOOZE = "exalate_incident_snooze"
    INCIDENT_OPEN = "exalate_incident_open"


class View(StrEnum):
    """``callback_id`` of modals."""

    REQUEST = "exalate_request"
    REJECT = "exalate_reject_reason"
    CODE = "exalate_code"
    PASTE = "exalate_paste_code"
    HAND_OVER = "exalate_hand_over"
    HOME = "exalate_home"


class Block(StrEnum):
    """``block_id`` of input blocks that are not request fields."""

    REASON = "reason"
    REJECT_ALL = "reject_all"
    CODE = "invitation_code"
    NEW_REQUESTER = "new_requester"
