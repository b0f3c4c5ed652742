"""The approval card's buttons: Approve, Reject, Retry and Resend code.

Every click is acknowledged first; authorisation and the state change happen on the
server after that, and a click that changes nothing is explained privately to the
person who made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.approvals.errors import ApprovalError
from bot.approvals.model import ConnectionRequest
from bot.service import ConnectionService
from handlers import blocks
from handlers.budget import SLACK_BUDGET_SECONDS
from handlers.ids import Action
from handlers.inflight import InFlight
from handlers.payloads import RequestRef, request_ref

log = logging.getLogger(__name__)

SOMETHING_WENT_WRONG = (
    "Something went wrong on my side; nothing was lost. Try again in a minute, and tell an "
    "Exalate admin if it keeps happening."
)

TOO_SLOW = "Slack or Jira is slow to answer just now, so nothing changed. Click again in a moment."

Decision = Callable[[RequestRef, str], Awaitable[ConnectionRequest]]
Followup = Callable[[dict[str, Any], ConnectionRequest, AsyncRespond], Awaitable[None]]


async def _say_privately(respond: AsyncRespond, text: str) -> None:
    await respond(text=text, response_type="ephemeral", replace_original=False)


def on_click(
    decide: Decision, followup: Followup | None = None, *, opens_modal: bool = False
) -> Callable[..., Awaitable[None]]:
    """A button listener: ack, run ``decide(ref, user)``, explain any refusal.

    Exceptions never escape after the ack (Bolt would turn a fast one into a 404 for
    Slack); they are logged by kind and the clicker is told, privately. When the
    followup ``opens_modal``, ``decide`` must end within ``SLACK_BUDGET_SECONDS`` of the
    click, while the trigger_id still opens one; past that nothing is done.
    """

    async def listener(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SLACK_BUDGET_SECONDS if opens_modal else None
        await ack()
        user = body["user"]["id"]
        action = body["actions"][0].get("action_id")
        try:
            ref = request_ref(body["actions"][0].get("value", ""))
            if ref is None:
                raise ApprovalError("That button does not belong to any request.")
            try:
                async with asyncio.timeout_at(deadline):
                    request = await decide(ref, user)
            except TimeoutError:
                log.warning("click_too_slow action=%s", action)
                await _say_privately(respond, TOO_SLOW)
                return
            if followup is not None:
                await followup(body, request, respond)
        except ApprovalError as error:
            await _say_privately(respond, blocks.explain(error))
        except Exception as error:
            log.error("click_failed action=%s kind=%s", action, type(error).__name__)
            await _say_privately(respond, SOMETHING_WENT_WRONG)

    return listener


def register(app: AsyncApp, service: ConnectionService, inflight: InFlight) -> None:
    """Install the button listeners."""

    async def open_modal(trigger_id: str, view: blocks.Json) -> None:
        try:
            await app.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as error:
            log.warning("modal_failed error=%s", error.response.get("error"))
            raise ApprovalError("Slack would not open the form in time; click again.") from None

    async def open_reject_modal(
        body: dict[str, Any], request: ConnectionRequest, _respond: AsyncRespond
    ) -> None:
        await open_modal(body["trigger_id"], blocks.reject_modal(request))

    async def open_request_modal(
        body: dict[str, Any], request: ConnectionRequest, _respond: AsyncRespond
    ) -> None:
        fields = request.fields
        view = blocks.request_modal(
            local=fields.local_short_name,
            remote=fields.remote_short_name,
            name=fields.connection_name,
            description=fields.description,
            project=fields.project_key,
            projects=service.projects.peek(),
        )
        await open_modal(body["trigger_id"], view)

    async def confirm_resend(
        _body: dict[str, Any], request: ConnectionRequest, respond: AsyncRespond
    ) -> None:
        await _say_privately(respond, blocks.resend_outcome(request))

    async def show_code(ack: AsyncAck, body: dict[str, Any]) -> None:
        """Show code works from App Home too, where there is no response_url: every
        answer, the code or the reason there is none, comes as a modal."""
        await ack()
        try:
            ref = request_ref(body["actions"][0].get("value", ""))
            if ref is None:
                raise ApprovalError("That button does not belong to any request.")
            request, code = await service.reveal_code(ref.request_id, body["user"]["id"])
            view = blocks.code_modal(request, code)
        except ApprovalError as error:
            view = blocks.notice_modal(blocks.explain(error))
        except Exception as error:
            log.error("show_code_failed kind=%s", type(error).__name__)
            view = blocks.notice_modal(SOMETHING_WENT_WRONG)
        with contextlib.suppress(ApprovalError):
            await open_modal(body["trigger_id"], view)

    async def open_paste_modal(
        body: dict[str, Any], request: ConnectionRequest, _respond: AsyncRespond
    ) -> None:
        await open_modal(body["trigger_id"], blocks.paste_modal(request))

    def about(method: Callable[[int, str], Awaitable[ConnectionRequest]]) -> Decision:
        """An action on the request the button names."""
        return lambda ref, user: method(ref.request_id, user)

    def as_shown(method: Callable[..., Awaitable[ConnectionRequest]]) -> Decision:
        """A decision on the request exactly as the card showed it (its fingerprint)."""

        async def decide(ref: RequestRef, user: str) -> ConnectionRequest:
            if ref.seen is None:  # every card the bot draws names the fingerprint
                raise ApprovalError("That button does not belong to any request.")
            return await method(ref.request_id, user, seen=ref.seen)

        return decide

    listeners = {
        Action.APPROVE: on_click(as_shown(service.approve)),
        Action.RETRY: on_click(as_shown(service.retry)),
        Action.REJECT: on_click(
            as_shown(service.check_can_reject), open_reject_modal, opens_modal=True
        ),
        Action.RESEND: on_click(about(service.resend_code), confirm_resend),
        Action.CANCEL: on_click(about(service.cancel)),
        Action.REREQUEST: on_click(
            about(service.own_request), open_request_modal, opens_modal=True
        ),
        Action.PASTE_CODE: on_click(
            about(service.check_can_paste), open_paste_modal, opens_modal=True
        ),
        Action.SHOW_CODE: show_code,
    }
    for action, listener in listeners.items():
        app.action(action.value)(inflight.track(listener))
