"""Modal submissions: the request form and the rejection reason.

Problems are answered with ``response_action: errors`` while the modal is still open,
so nothing the person typed is lost.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.approvals.errors import ApprovalError
from bot.approvals.rules import Field
from bot.service import ConnectionService
from handlers.ids import Block, View
from handlers.inflight import InFlight
from handlers.payloads import draft_from_view, input_value, request_id

log = logging.getLogger(__name__)

TRY_AGAIN = "Something went wrong on my side; your answers are kept. Submit again."


def register(app: AsyncApp, service: ConnectionService, inflight: InFlight) -> None:
    """Install the view-submission listeners."""

    async def submit_request(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            submission = await service.submit(draft_from_view(view), body["user"]["id"])
        except Exception as error:
            log.error("submission_failed kind=%s", type(error).__name__)
            await ack(response_action="errors", errors={Field.NAME.value: TRY_AGAIN})
            return
        if submission.request is None:
            errors = {field.value: message for field, message in submission.errors.items()}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        try:
            await service.announce(submission.request)
        except Exception as error:  # stored already; the card is posted again later
            log.error("announce_failed id=%s kind=%s", submission.request.id, type(error).__name__)

    async def submit_rejection(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = input_value(view, Block.REASON.value).strip()
        target = request_id(view.get("private_metadata") or "")
        user = body["user"]["id"]
        problem = "This form does not belong to any request."
        if not reason:
            problem = "Give a reason; the requester will read it."
        elif target is not None:
            try:
                await service.check_can_decide(target, user)
                problem = ""
            except ApprovalError as error:
                problem = str(error)
        if problem or target is None:
            await ack(response_action="errors", errors={Block.REASON.value: problem})
            return
        await ack()
        try:
            await service.reject(target, user, reason)
        except ApprovalError:
            pass  # decided by someone else since the check; the card says who
        except Exception as error:
            log.error("rejection_failed id=%s kind=%s", target, type(error).__name__)

    app.view(View.REQUEST.value)(inflight.track(submit_request))
    app.view(View.REJECT.value)(inflight.track(submit_rejection))
