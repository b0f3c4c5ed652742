"""The incident card's controls, a listener each: Acknowledge, the Snooze menu, and Open
in Exalate; and how sync health reaches the listeners that show it.

A press is acknowledged first: what it does waits on the database and maybe on Slack's
user groups (is the presser an owner?), longer than Slack waits for the ack. A press
that changes nothing is explained privately to the person who made it, in the service's
own sentence, which may mention who acknowledged first. A press that works says nothing
more: the outbox redraws the card and notes it in the thread, where everyone sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond

from bot.approvals.errors import ApprovalError
from bot.health.model import SNOOZES
from bot.service import HealthWatch
from handlers import blocks
from handlers.actions import SOMETHING_WENT_WRONG, Privately
from handlers.context import health_in

log = logging.getLogger(__name__)

NOT_WATCHED = "Sync health is not watched by this bot."
NOT_OURS = "That control does not belong to any incident card."
CARD_ID_DIGITS = 17  # as a request's number in a button value: more is not one we wrote


def card_id_of(value: str) -> int | None:
    """The card an Acknowledge button names; None for a value the bot never wrote."""
    if not (value.isascii() and value.isdigit()) or len(value) > CARD_ID_DIGITS:
        return None
    return int(value)


def snooze_of(value: str) -> tuple[int, str] | None:
    """The card and the choice a Snooze option names (``card:choice``); None for a
    value the bot never wrote."""
    number, _, choice = value.partition(":")
    card_id = card_id_of(number)
    if card_id is None or choice not in SNOOZES:
        return None
    return card_id, choice


def _pressed(body: blocks.Json) -> tuple[str, str, str]:
    """Who pressed, which control, and its value (a menu's: the option chosen)."""
    action = body["actions"][0]
    chosen = action.get("selected_option") or {}
    value = action.get("value") or chosen.get("value") or ""
    return str(body["user"]["id"]), str(action.get("action_id", "")), str(value)


async def _press(
    ack: AsyncAck,
    respond: AsyncRespond,
    context: AsyncBoltContext,
    action: str,
    act: Callable[[HealthWatch], Awaitable[object]],
) -> None:
    """Ack, then ``act``; a refusal is told to the presser alone, in the service's words
    (its own sentences: mentions in them are meant to work). No exception escapes after
    the ack, where it would reach only Bolt's log, and that by its message."""
    answer = Privately(ack, respond, subject=f"action={action}")
    await answer.ack()
    try:
        watch = health_in(context)
        if watch is None:
            raise ApprovalError(NOT_WATCHED)
        await act(watch)
    except ApprovalError as error:
        await answer.say(str(error))
    except Exception as error:
        log.error("click_failed action=%s kind=%s", action, type(error).__name__)
        await answer.say(SOMETHING_WENT_WRONG)


async def acknowledge_incidents(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Acknowledge: the presser is on it, and the card's owners get no more reminders."""
    user, action, value = _pressed(body)

    async def acknowledge(watch: HealthWatch) -> None:
        card_id = card_id_of(value)
        if card_id is None:
            raise ApprovalError(NOT_OURS)
        await watch.acknowledge(card_id, user)

    await _press(ack, respond, context, action, acknowledge)


async def snooze_incidents(
    ack: AsyncAck, body: blocks.Json, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Snooze: the card's reminder waits for the chosen time."""
    user, action, value = _pressed(body)

    async def snooze(watch: HealthWatch) -> None:
        chosen = snooze_of(value)
        if chosen is None:
            raise ApprovalError(NOT_OURS)
        await watch.snooze(chosen[0], user, chosen[1])

    await _press(ack, respond, context, action, snooze)


async def open_in_exalate(ack: AsyncAck) -> None:
    """Open in Exalate is a link: Slack opens it, and still sends the click, which only
    needs its ack (unanswered, Slack shows the presser a warning)."""
    await ack()
