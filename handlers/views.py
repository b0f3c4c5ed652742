"""Modal submissions: the request form, the rejection reason and the pasted code.

Problems are answered with ``response_action: errors`` while the modal is still open,
so nothing the person typed is lost. The checks that run before the ack (against Jira,
the database and Slack's user groups) get ``SLACK_BUDGET_SECONDS``: past it, the person
is asked to submit again and nothing changes, because an answer later than 3 s shows
them an error while the bot would go on to act.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.errors import SlackApiError

from bot.approvals.errors import ApprovalError
from bot.approvals.invitation_codes import CODE_CHARACTERS, code_fault, tidy_code
from bot.approvals.model import ConnectionRequest
from bot.approvals.rules import SENT_MAX, Draft, Field, sent_length
from bot.log import remember_secret
from bot.service import ConnectionService, Submission
from handlers import blocks
from handlers.context import codes_in, service_in
from handlers.guard import SLACK_BUDGET_SECONDS, guard, within_budget
from handlers.ids import Block
from handlers.payloads import checked, draft_from_view, form_site, input_value, request_ref

log = logging.getLogger(__name__)

TRY_AGAIN = "Something went wrong on my side; your answers are kept. Submit again."
SAVING = "Saving your request… The database is slow just now; this form will say when it is saved."
NOT_SAVED = (
    "Something went wrong on my side while saving; nothing is lost that you cannot type "
    "again: run `/exalate connect` again."
)
SAVING_MARGIN = 0.4
"""Seconds past the checks' budget that storing may take before the form says "Saving…":
the answer still travels well inside Slack's 3 s."""
TOO_SLOW = (
    "Slack or Jira is slow to answer just now, so nothing was changed; "
    "your answers are kept. Submit again in a moment."
)


@dataclass
class InTheForm:
    """A form's answer: a problem shown under ``block`` while the modal stays open.

    After the ack the modal is closed and there is nobody to tell: a refusal then means
    someone else acted first, and the card shows who; a failure is logged.
    """

    acked: AsyncAck
    block: str
    event: str
    subject: str
    acks_first: bool = False
    too_slow: str = TOO_SLOW
    went_wrong: str = TRY_AGAIN

    @classmethod
    def under(cls, block: Block, ack: AsyncAck, view: blocks.Json, event: str) -> InTheForm:
        ref = request_ref(view.get("private_metadata") or "")
        return cls(ack, block.value, event, subject=f"id={ref.request_id if ref else '-'}")

    async def ack(self) -> None:
        await self.acked()

    async def refuse(self, text: str) -> None:
        await self.acked(response_action="errors", errors={self.block: text})

    async def tell(self, text: str) -> None:
        """Nothing: the modal is closed, and the card shows what became of the request."""


async def submit_request(
    ack: AsyncAck, body: blocks.Json, view: blocks.Json, context: AsyncBoltContext
) -> None:
    """The request form: checked against the rules and the live Jira before the ack, so
    each problem shows under its field; once stored, its card is on its way (the
    outbox). A form Slack sends twice (a retry, or a replay) stores one request.

    Not through ``guard``: its problems are several, one per field, and the service
    holds its checks to the budget itself. Storing is never cut short (a request
    half-stored helps nobody): if it outlasts the budget (a database busy with another
    writer), the form is answered in time with "Saving…" and redrawn with the outcome.
    """
    service = service_in(context)
    started = asyncio.get_running_loop().time()
    submitting = asyncio.ensure_future(
        service.submit(
            request_draft(service, view),
            body["user"]["id"],
            check_within=SLACK_BUDGET_SECONDS,
            view_id=str(view.get("id") or "")[:64] or None,
        )
    )
    try:
        within = started + SLACK_BUDGET_SECONDS + SAVING_MARGIN - asyncio.get_running_loop().time()
        done, _ = await asyncio.wait({submitting}, timeout=max(within, 0.0))
        if not done:
            log.warning("submission_slow_to_store")
            await ack(response_action="update", view=blocks.notice_modal(SAVING))
            await _outcome_later(context, view, submitting)
            return
    finally:  # this listener cut short (shutdown): the submission with it, not left alone
        if not submitting.done():
            submitting.cancel()
    try:
        submission = submitting.result()
    except TimeoutError:
        log.warning("submission_too_slow")
        await ack(response_action="errors", errors={Field.NAME.value: TOO_SLOW})
        return
    except Exception as error:
        log.error("submission_failed kind=%s", type(error).__name__)
        await ack(response_action="errors", errors={Field.NAME.value: TRY_AGAIN})
        return
    if submission.request is None:
        site_shown = len(service.sites.open()) > 1  # as request_form drew it
        await ack(response_action="errors", errors=under_blocks(submission.errors, site_shown))
        return
    await ack()


async def _outcome_later(
    context: AsyncBoltContext, view: blocks.Json, submitting: asyncio.Future[Submission]
) -> None:
    """Redraw the "Saving…" form with what came of the submission."""
    try:
        submission = await submitting
    except Exception as error:
        log.error("submission_failed kind=%s", type(error).__name__)
        text = NOT_SAVED
    else:
        if submission.request is not None:
            text = saved(submission.request)
        else:
            problems = "\n".join(f"• {blocks.escape(m)}" for m in submission.errors.values())
            text = f"Your request was not saved:\n{problems}\nRun `/exalate connect` again."
    try:
        await context.client.views_update(view_id=view.get("id"), view=blocks.notice_modal(text))
    except SlackApiError as error:  # closed meanwhile: the card and the DM still tell
        log.info("saving_view_not_updated error=%s", error.response.get("error"))


def saved(request: ConnectionRequest) -> str:
    return (
        f"Saved as request #{request.id}. The approvers' card is on its way, and I will "
        "message you when it is decided."
    )


def request_draft(service: ConnectionService, view: blocks.Json) -> Draft:
    """The form as submitted. A local short name the form was pre-filled with for one
    site is no answer for another: switched to another site, the person gets that
    site's own (the Site select does not redraw the form)."""
    draft = draft_from_view(view)
    opened_for = form_site(view)
    if opened_for and draft.site != opened_for and opened_for in service.sites.names:
        prefilled = service.sites[opened_for].config.local_short_name
        if prefilled and draft.local_short_name.strip() == prefilled:
            draft = replace(draft, local_short_name="")
    return draft


def under_blocks(errors: Mapping[Field, str], site_shown: bool) -> dict[str, str]:
    """Each problem under its field's block; one about the site, in a form that shows no
    Site select (one site takes requests, or none), under the local short name, as Slack
    refuses errors naming a block the view lacks."""
    placed: dict[str, str] = {}
    for field, message in errors.items():
        block = field.value
        if field is Field.SITE and not site_shown:
            block = Field.LOCAL.value
        placed[block] = f"{placed[block]} {message}" if block in placed else message
    return placed


@dataclass(frozen=True)
class Rejection:
    """A submitted reason form."""

    request_id: int
    seen: str
    reason: str
    everything: bool


def read_rejection(view: blocks.Json) -> Rejection:
    """The reason form as submitted, refused unless the reason is fit to send and the form
    names the card it came from."""
    reason = input_value(view, Block.REASON.value).strip()
    if not reason:
        raise ApprovalError("Give a reason; the requester will read it.")
    if "\x00" in reason:
        raise ApprovalError("The reason contains a NUL character; remove it.")
    if len(reason) > blocks.REASON_MAX:
        raise ApprovalError(f"Keep the reason under {blocks.REASON_MAX} characters.")
    if sent_length(reason) > SENT_MAX:  # what the requester's message has room for
        raise ApprovalError(
            f"The reason takes {sent_length(reason)} characters as Slack receives it (each "
            f"& counts 5, each < or > 4); at most {SENT_MAX} fit. Shorten it."
        )
    ref = request_ref(view.get("private_metadata") or "")
    if ref is None or ref.seen is None:
        raise ApprovalError("This form does not belong to any request.")
    return Rejection(ref.request_id, ref.seen, reason, checked(view, Block.REJECT_ALL.value))


async def submit_rejection(
    ack: AsyncAck, body: blocks.Json, view: blocks.Json, context: AsyncBoltContext
) -> None:
    """The reason form: the reason, and that the approver may still reject the request as
    its card showed it, are checked before the ack; then the request is rejected, or every
    open request of its requester's when the form says so."""
    service, user = service_in(context), body["user"]["id"]

    async def may_reject() -> Rejection:
        rejection = read_rejection(view)
        await service.check_can_reject(rejection.request_id, user, seen=rejection.seen)
        return rejection

    async def reject(rejection: Rejection) -> None:
        request_id, reason, seen = rejection.request_id, rejection.reason, rejection.seen
        if rejection.everything:
            await service.reject_all_from(request_id, user, reason, seen=seen)
        else:
            await service.reject(request_id, user, reason, seen=seen)

    answer = InTheForm.under(Block.REASON, ack, view, event="rejection")
    await guard(answer, may_reject, reject, deadline=within_budget())


@dataclass(frozen=True)
class PastedCode:
    """A submitted Paste invitation code form."""

    request_id: int
    code: str


def read_pasted_code(view: blocks.Json) -> PastedCode:
    """The code an approver copied from the Exalate console, remembered as a secret before
    anything could log it; refused unless it looks like an invitation code."""
    code = tidy_code(input_value(view, Block.CODE.value))  # pasted line breaks
    remember_secret(code)
    ref = request_ref(view.get("private_metadata") or "")
    if ref is None:
        raise ApprovalError("This form is not for a request.")
    if not code:
        raise ApprovalError("Paste the code.")
    if code_fault(code, longest=blocks.CODE_MAX) is not None:  # the check Exalate's pass too
        raise ApprovalError(
            f"That is not an invitation code: it holds only {CODE_CHARACTERS}, "
            f"at most {blocks.CODE_MAX} of them."
        )
    return PastedCode(ref.request_id, code)


async def submit_code(
    ack: AsyncAck, body: blocks.Json, view: blocks.Json, context: AsyncBoltContext
) -> None:
    """The pasted code: its shape, and that the approver may paste it, are checked before
    the ack; then it is stored and sent on to the requester."""
    codes, user = codes_in(context), body["user"]["id"]

    async def may_paste() -> PastedCode:
        pasted = read_pasted_code(view)
        await codes.check_can_paste(pasted.request_id, user)
        return pasted

    async def deliver(pasted: PastedCode) -> None:
        await codes.paste_code(pasted.request_id, user, pasted.code)

    answer = InTheForm.under(Block.CODE, ack, view, event="paste")
    await guard(answer, may_paste, deliver, deadline=within_budget())


@dataclass(frozen=True)
class HandOver:
    """A submitted Hand over form."""

    request_id: int
    to: str


def read_hand_over(view: blocks.Json) -> HandOver:
    """Whom the approver chose, refused unless it is a person and the form names its
    request."""
    to = input_value(view, Block.NEW_REQUESTER.value)
    ref = request_ref(view.get("private_metadata") or "")
    if ref is None:
        raise ApprovalError("This form is not for a request.")
    if not re.fullmatch(r"[UW][A-Z0-9]{2,}", to):
        raise ApprovalError("Choose a person.")
    return HandOver(ref.request_id, to)


async def submit_hand_over(
    ack: AsyncAck, body: blocks.Json, view: blocks.Json, context: AsyncBoltContext
) -> None:
    """The new requester, handed the request before the ack (one write): a refusal (no
    approver, a request closed meanwhile, a person who left too) shows in the form, which
    stays open; the request's news and code follow through the outbox."""
    service, user = service_in(context), body["user"]["id"]

    async def hand() -> ConnectionRequest:
        chosen = read_hand_over(view)
        return await service.hand_over(chosen.request_id, user, chosen.to)

    async def done(_handed: ConnectionRequest) -> None:
        """Nothing more: the outbox tells the new requester."""

    answer = InTheForm.under(Block.NEW_REQUESTER, ack, view, event="hand_over")
    await guard(answer, hand, done, deadline=within_budget())
