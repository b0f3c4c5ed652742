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
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.approvals.errors import ApprovalError
from bot.approvals.rules import Field
from bot.log import remember_secret
from bot.service import ConnectionService
from handlers import blocks
from handlers.budget import SLACK_BUDGET_SECONDS
from handlers.ids import Block, View
from handlers.inflight import InFlight
from handlers.payloads import checked, draft_from_view, input_value, request_ref

log = logging.getLogger(__name__)

# An Exalate invitation code is base64 text: anything else could break out of the code
# block it is shown in, so it is refused rather than escaped.
INVITATION_CODE = re.compile(r"[A-Za-z0-9+/=_-]+")
TRY_AGAIN = "Something went wrong on my side; your answers are kept. Submit again."
TOO_SLOW = (
    "Slack or Jira is slow to answer just now, so nothing was changed; "
    "your answers are kept. Submit again in a moment."
)


def register(app: AsyncApp, service: ConnectionService, inflight: InFlight) -> None:
    """Install the view-submission listeners."""

    async def submit_request(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            submission = await service.submit(
                draft_from_view(view), body["user"]["id"], check_within=SLACK_BUDGET_SECONDS
            )
        except TimeoutError:
            log.warning("submission_too_slow")
            await ack(response_action="errors", errors={Field.NAME.value: TOO_SLOW})
            return
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
        ref = request_ref(view.get("private_metadata") or "")
        user = body["user"]["id"]
        problem = "This form does not belong to any request."
        if not reason:
            problem = "Give a reason; the requester will read it."
        elif "\x00" in reason:
            problem = "The reason contains a NUL character; remove it."
        elif len(reason) > blocks.REASON_MAX:
            problem = f"Keep the reason under {blocks.REASON_MAX} characters."
        elif ref is not None and ref.seen is not None:  # the form names the card it came from
            try:
                async with asyncio.timeout(SLACK_BUDGET_SECONDS):
                    await service.check_can_reject(ref.request_id, user, seen=ref.seen)
                problem = ""
            except ApprovalError as error:
                problem = blocks.explain(error)
            except TimeoutError:
                log.warning("rejection_check_too_slow id=%s", ref.request_id)
                problem = TOO_SLOW
        if problem or ref is None or ref.seen is None:
            await ack(response_action="errors", errors={Block.REASON.value: problem})
            return
        await ack()
        everything = checked(view, Block.REJECT_ALL.value)
        try:
            if everything:
                await service.reject_all_from(ref.request_id, user, reason, seen=ref.seen)
            else:
                await service.reject(ref.request_id, user, reason, seen=ref.seen)
        except ApprovalError:
            pass  # decided by someone else since the check; the card says who
        except Exception as error:
            log.error("rejection_failed id=%s kind=%s", ref.request_id, type(error).__name__)

    async def submit_code(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The code an approver copied from the Exalate console: stored, then sent on."""
        code = "".join(input_value(view, Block.CODE.value).split())  # pasted line breaks
        remember_secret(code)  # before anything could log it
        ref = request_ref(view.get("private_metadata") or "")
        user = body["user"]["id"]
        problem = ""
        if ref is None:
            problem = "This form is not for a request."
        elif not code:
            problem = "Paste the code."
        elif len(code) > blocks.CODE_MAX or not INVITATION_CODE.fullmatch(code):
            problem = (
                "That is not an invitation code: it holds only letters, digits and + / = _ -, "
                f"at most {blocks.CODE_MAX} of them."
            )
        if problem or ref is None:
            await ack(response_action="errors", errors={Block.CODE.value: problem})
            return
        try:
            async with asyncio.timeout(SLACK_BUDGET_SECONDS):
                await service.check_can_paste(ref.request_id, user)
        except ApprovalError as error:
            await ack(response_action="errors", errors={Block.CODE.value: blocks.explain(error)})
            return
        except TimeoutError:
            log.warning("paste_check_too_slow id=%s", ref.request_id)
            await ack(response_action="errors", errors={Block.CODE.value: TOO_SLOW})
            return
        await ack()
        try:
            await service.paste_code(ref.request_id, user, code)
        except ApprovalError:
            pass  # someone pasted it a moment ago; the card says so
        except Exception as error:
            log.error("paste_failed id=%s kind=%s", ref.request_id, type(error).__name__)

    app.view(View.REQUEST.value)(inflight.track(submit_request))
    app.view(View.REJECT.value)(inflight.track(submit_rejection))
    app.view(View.PASTE.value)(inflight.track(submit_code))
