"""The approval card's buttons: Approve, Reject and Retry.

Every click is acknowledged first; authorisation and the state change happen on the
server after that, and a click that changes nothing is explained privately to the
person who made it.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.errors import ApprovalError, Conflict
from bot.service import ConnectionService
from handlers import blocks
from handlers.ids import Action
from handlers.payloads import request_id


def _explain(error: ApprovalError) -> str:
    return blocks.conflict_text(error.request) if isinstance(error, Conflict) else str(error)


async def _tell_privately(respond: AsyncRespond, error: ApprovalError) -> None:
    await respond(text=_explain(error), response_type="ephemeral", replace_original=False)


def register(app: AsyncApp, service: ConnectionService) -> None:
    """Install the button listeners."""

    async def approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        target = request_id(body["actions"][0].get("value", ""))
        if target is None:
            return
        try:
            await service.approve(target, body["user"]["id"])
        except ApprovalError as error:
            await _tell_privately(respond, error)

    async def retry(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        target = request_id(body["actions"][0].get("value", ""))
        if target is None:
            return
        try:
            await service.retry(target, body["user"]["id"])
        except ApprovalError as error:
            await _tell_privately(respond, error)

    async def reject(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        target = request_id(body["actions"][0].get("value", ""))
        if target is None:
            return
        try:
            request = await service.check_can_decide(target, body["user"]["id"])
        except ApprovalError as error:
            await _tell_privately(respond, error)
            return
        await client.views_open(trigger_id=body["trigger_id"], view=blocks.reject_modal(request))

    app.action(Action.APPROVE.value)(approve)
    app.action(Action.RETRY.value)(retry)
    app.action(Action.REJECT.value)(reject)
