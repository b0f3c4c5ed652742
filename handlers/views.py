"""Modal submissions: the request form and the rejection reason."""

from __future__ import annotations

import contextlib
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.approvals.errors import ApprovalError
from bot.service import ConnectionService
from handlers.ids import Block, View
from handlers.payloads import draft_from_view, input_value, request_id


def register(app: AsyncApp, service: ConnectionService) -> None:
    """Install the view-submission listeners."""

    async def submit_request(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        submission = await service.submit(draft_from_view(view), body["user"]["id"])
        if submission.request is None:
            errors = {field.value: message for field, message in submission.errors.items()}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        await service.announce(submission.request)

    async def submit_rejection(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = input_value(view, Block.REASON.value).strip()
        target = request_id(view.get("private_metadata") or "")
        if not reason:
            await ack(response_action="errors", errors={Block.REASON.value: "Give a reason."})
            return
        if target is None:
            await ack(response_action="errors", errors={Block.REASON.value: "Unknown request."})
            return
        try:
            request = await service.check_can_decide(target, body["user"]["id"])
        except ApprovalError as error:
            await ack(response_action="errors", errors={Block.REASON.value: str(error)})
            return
        await ack()
        # Someone may decide between the check and now; the card then says who did.
        with contextlib.suppress(ApprovalError):
            await service.reject(request.id, body["user"]["id"], reason)

    app.view(View.REQUEST.value)(submit_request)
    app.view(View.REJECT.value)(submit_rejection)
