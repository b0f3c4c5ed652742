"""Slack's 3 s, and the guard that keeps every button and form inside them.

Slack shows the person an error when the answer to a form submission comes more than
3 s after they pressed its button, and a click's trigger_id opens no modal after 3 s.
Work that must come first (checks against Jira, the database, Slack's user groups) is
held to ``SLACK_BUDGET_SECONDS``, leaving the rest of the 3 s for the answer to travel.

Buttons and forms share one skeleton, ``guard``: check, act, and explain a refusal to
the person who asked, with the ack before the check where it carries nothing (a click)
and after it where it carries the problems (a form). What differs between them is how
they answer, which an ``Answer`` says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from bot.approvals.errors import ApprovalError
from handlers import blocks

log = logging.getLogger(__name__)

SLACK_BUDGET_SECONDS = 2.0

Checked = TypeVar("Checked")


def within_budget() -> float:
    """The loop time by which work that must precede the answer has to end.

    Taken when the listener starts, so the ack and the checks share one budget.
    """
    return asyncio.get_running_loop().time() + SLACK_BUDGET_SECONDS


class Answer(Protocol):
    """How one listener answers the person who clicked or submitted."""

    acks_first: bool
    """A click's ack carries nothing, so it goes first; a form's ack carries its errors."""
    too_slow: str
    went_wrong: str
    event: str
    """Log lines say ``{event}_failed`` and ``{event}_too_slow``, then ``subject``."""
    subject: str

    async def ack(self) -> None:
        """Tell Slack the payload arrived and, for a form, close it."""

    async def refuse(self, text: str) -> None:
        """Say why nothing was done: the check refused, ran out of time or failed."""

    async def tell(self, text: str) -> None:
        """Say why the act, after the ack, did not happen as asked."""


async def guard(
    answer: Answer,
    check: Callable[[], Awaitable[Checked]],
    act: Callable[[Checked], Awaitable[object]],
    *,
    deadline: float | None = None,
) -> None:
    """``check`` (by ``deadline``, loop time), then ``act`` on the result; the ack comes
    first for a click (``acks_first``), between the two for a form.

    A refusal (``ApprovalError``) is explained through ``answer``; so is a check past its
    deadline, and then nothing is done. No exception escapes: after the ack Bolt would
    turn a fast one into an error answer for Slack, and before it the person would see
    an error instead of the reason. Failures are logged by kind only, as their messages
    could carry what the person typed.
    """
    if answer.acks_first:
        await answer.ack()
    try:
        async with asyncio.timeout_at(deadline):
            checked = await check()
    except ApprovalError as error:
        await answer.refuse(blocks.explain(error))
        return
    except TimeoutError:
        log.warning("%s_too_slow %s", answer.event, answer.subject)
        await answer.refuse(answer.too_slow)
        return
    except Exception as error:
        _log_failure(answer, error)
        await answer.refuse(answer.went_wrong)
        return
    if not answer.acks_first:
        await answer.ack()
    try:
        await act(checked)
    except ApprovalError as error:
        await answer.tell(blocks.explain(error))
    except Exception as error:
        _log_failure(answer, error)
        await answer.tell(answer.went_wrong)


def _log_failure(answer: Answer, error: Exception) -> None:
    log.error("%s_failed %s kind=%s", answer.event, answer.subject, type(error).__name__)
