"""The eight buttons, a listener each.

On the approval card: Approve, Reject, Retry, Resend code and Paste invitation code. In
the requester's DMs: Cancel, Request again and Show code (Show code on App Home too). An
approver's DM with the console's steps carries Paste invitation code as well.

Every click is acknowledged first; authorisation and the state change happen after
that (``guard``), and a click that changes nothing is explained privately to the person
who made it. A click that opens a form checks first, within ``SLACK_BUDGET_SECONDS`` of
the click, while its trigger_id still opens one.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.errors import ApprovalError
from bot.approvals.model import ConnectionRequest, Status
from handlers import blocks
from handlers.context import codes_in, service_in
from handlers.guard import guard, within_budget
from handlers.payloads import RequestRef, request_ref
from handlers.request_form import request_form

log = logging.getLogger(__name__)

SOMETHING_WENT_WRONG = (
    "Something went wrong on my side; nothing was lost. Try again in a minute, and tell an "
    "Exalate admin if it keeps happening."
)
TOO_SLOW = "Slack or Jira is slow to answer just now, so nothing changed. Click again in a moment."
NOT_OURS = "That button does not belong to any request."


@dataclass(frozen=True)
class Click:
    """One press of a button: who pressed which, and what it carried."""

    user: str
    action: str
    value: str
    trigger_id: str

    @classmethod
    def of(cls, body: blocks.Json) -> Click:
        action = body["actions"][0]
        return cls(
            user=body["user"]["id"],
            action=str(action.get("action_id", "")),
            value=str(action.get("value", "")),
            trigger_id=str(body.get("trigger_id", "")),
        )

    async def request(self) -> RequestRef:
        """The request the button names, refused if the bot never wrote that value.

        A coroutine so that it can be ``guard``'s check when there is nothing else to check.
        """
        ref = request_ref(self.value)
        if ref is None:
            raise ApprovalError(NOT_OURS)
        return ref

    async def as_shown(self) -> RequestRef:
        """The request and the fingerprint of the card clicked: a decision applies to the
        request as the card showed it or not at all, so every decision button names it."""
        ref = await self.request()
        if ref.seen is None:
            raise ApprovalError(NOT_OURS)
        return ref


@dataclass
class Privately:
    """A click's answer: a message only the clicker sees, by the click's response_url."""

    acked: AsyncAck
    respond: AsyncRespond
    subject: str
    event: str = "click"
    acks_first: bool = True
    too_slow: str = TOO_SLOW
    went_wrong: str = SOMETHING_WENT_WRONG

    @classmethod
    def to(cls, click: Click, ack: AsyncAck, respond: AsyncRespond) -> Privately:
        return cls(ack, respond, subject=f"action={click.action}")

    async def ack(self) -> None:
        await self.acked()

    async def refuse(self, text: str) -> None:
        await self.say(text)

    async def tell(self, text: str) -> None:
        await self.say(text)

    async def say(self, text: str) -> None:
        await self.respond(text=text, response_type="ephemeral", replace_original=False)


@dataclass
class InAModal:
    """Show code's answer, whatever it is: a modal. Show code is on App Home too, where a
    click has no response_url."""

    acked: AsyncAck
    client: AsyncWebClient
    click: Click
    subject: str
    event: str = "click"
    acks_first: bool = True
    too_slow: str = TOO_SLOW
    went_wrong: str = SOMETHING_WENT_WRONG

    @classmethod
    def to(cls, click: Click, ack: AsyncAck, client: AsyncWebClient) -> InAModal:
        return cls(ack, client, click, subject=f"action={click.action}")

    async def ack(self) -> None:
        await self.acked()

    async def refuse(self, text: str) -> None:
        await self.show(blocks.notice_modal(text))

    async def tell(self, text: str) -> None:
        await self.show(blocks.notice_modal(text))

    async def show(self, view: blocks.Json) -> None:
        """Open ``view``; if Slack will not, the trigger_id is spent and nobody can be told."""
        with contextlib.suppress(ApprovalError):
            await open_modal(self.client, self.click, view)


async def open_modal(client: AsyncWebClient, click: Click, view: blocks.Json) -> None:
    """Open ``view`` for ``click``; Slack's refusal (an expired trigger_id, say) becomes
    one the clicker is told."""
    try:
        await client.views_open(trigger_id=click.trigger_id, view=view)
    except SlackApiError as error:
        log.warning("modal_failed error=%s", error.response.get("error"))
        raise ApprovalError("Slack would not open the form in time; click again.") from None


async def approve(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Approve: the request, exactly as its card showed it, is created in Exalate once
    its route has the approvals it needs; an approval short of that is counted."""
    click, service = Click.of(body), service_in(context)
    answer = Privately.to(click, ack, respond)

    async def create(ref: RequestRef) -> None:
        approved = await service.approve(ref.request_id, click.user, seen=ref.seen)
        if approved.status is Status.PENDING_APPROVAL:  # more approvals are needed
            await answer.say(blocks.approval_counted(approved, service.rule_of(approved)))

    await guard(answer, click.as_shown, create)


async def retry(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Retry: a failed request, exactly as its card showed it, is created again."""
    click, service = Click.of(body), service_in(context)

    async def create_again(ref: RequestRef) -> None:
        await service.retry(ref.request_id, click.user, seen=ref.seen)

    await guard(Privately.to(click, ack, respond), click.as_shown, create_again)


async def reject(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Reject: check the clicker may reject the request as its card showed it, then open
    the reason form. Submitting the form rejects (``views.submit_rejection``)."""
    click, service = Click.of(body), service_in(context)

    async def may_reject() -> ConnectionRequest:
        ref = await click.as_shown()
        return await service.check_can_reject(ref.request_id, click.user, seen=ref.seen)

    async def open_reason_form(request: ConnectionRequest) -> None:
        await open_modal(context.client, click, blocks.reject_modal(request))

    answer = Privately.to(click, ack, respond)
    await guard(answer, may_reject, open_reason_form, deadline=within_budget())


async def resend_code(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Resend code: the stored code goes to the requester again after Slack refused the
    DM, and the clicker learns whether it arrived this time."""
    click, codes = Click.of(body), codes_in(context)
    answer = Privately.to(click, ack, respond)

    async def resend(ref: RequestRef) -> None:
        request = await codes.resend_code(ref.request_id, click.user)
        await answer.say(blocks.resend_outcome(request))

    await guard(answer, click.request, resend)


async def cancel(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Cancel: the requester withdraws a request still awaiting approval."""
    click, service = Click.of(body), service_in(context)

    async def withdraw(ref: RequestRef) -> None:
        await service.cancel(ref.request_id, click.user)

    await guard(Privately.to(click, ack, respond), click.request, withdraw)


async def request_again(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Request again: check the request is the clicker's own, then open the request form
    filled in with it."""
    click, service = Click.of(body), service_in(context)

    async def own_request() -> ConnectionRequest:
        ref = await click.request()
        return await service.own_request(ref.request_id, click.user)

    async def open_request_form(request: ConnectionRequest) -> None:
        fields = request.fields
        values = {
            "site": fields.site,
            "local": fields.local_short_name,
            "remote": fields.remote_short_name,
            "name": fields.connection_name,
            "description": fields.description,
            "project": fields.project_key,
        }
        await open_modal(context.client, click, request_form(service, values))

    answer = Privately.to(click, ack, respond)
    await guard(answer, own_request, open_request_form, deadline=within_budget())


async def paste_code(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Paste invitation code: check the clicker is an approver and the bot lacks the code,
    then open the form for it. Submitting the form delivers it (``views.submit_code``)."""
    click, codes = Click.of(body), codes_in(context)

    async def may_paste() -> ConnectionRequest:
        ref = await click.request()
        return await codes.check_can_paste(ref.request_id, click.user)

    async def open_paste_form(request: ConnectionRequest) -> None:
        await open_modal(context.client, click, blocks.paste_modal(request))

    answer = Privately.to(click, ack, respond)
    await guard(answer, may_paste, open_paste_form, deadline=within_budget())


async def hand_over(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Hand over: check the clicker is an approver and the request open, then open the
    form asking whom to give it to (``views.submit_hand_over``)."""
    click, service = Click.of(body), service_in(context)

    async def may_hand_over() -> ConnectionRequest:
        ref = await click.request()
        return await service.check_can_hand_over(ref.request_id, click.user)

    async def open_hand_over_form(request: ConnectionRequest) -> None:
        await open_modal(context.client, click, blocks.hand_over_modal(request))

    answer = Privately.to(click, ack, respond)
    await guard(answer, may_hand_over, open_hand_over_form, deadline=within_budget())


async def show_code(ack: AsyncAck, body: blocks.Json, context: AsyncBoltContext) -> None:
    """Show code: the requester sees the code again in a modal, which Slack does not keep,
    while the partner has not accepted; every reveal is audited."""
    click, codes = Click.of(body), codes_in(context)
    answer = InAModal.to(click, ack, context.client)

    async def reveal() -> tuple[ConnectionRequest, str]:
        ref = await click.request()
        return await codes.reveal_code(ref.request_id, click.user)

    async def show(revealed: tuple[ConnectionRequest, str]) -> None:
        await answer.show(blocks.code_modal(*revealed))

    await guard(answer, reveal, show)
