"""InFlight holds a listener's work after its ack until the answers pending are out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from handlers.inflight import InFlight
from tests.loop_turns import no_op_ack, turns, until


async def test_work_after_an_ack_waits_for_the_answers_still_pending() -> None:
    """Another request (or Socket Mode envelope) is being answered: a listener that has
    acked holds its slow work until that answer is out too."""
    inflight = InFlight()
    order: list[str] = []

    async def ack() -> None:
        order.append("ack")

    async def listener(ack: object) -> None:
        await ack()  # type: ignore[operator]
        order.append("work")

    tracked = inflight.track(listener)
    async with inflight.answering():
        task = asyncio.create_task(tracked(ack=ack))
        await turns()
        assert order == ["ack"]
    await task
    assert order == ["ack", "work"]


async def test_with_nothing_pending_nothing_waits() -> None:
    inflight = InFlight()
    order: list[str] = []

    async def ack() -> None:
        order.append("ack")

    async def listener(ack: object) -> None:
        await ack()  # type: ignore[operator]
        order.append("work")

    await inflight.track(listener)(ack=ack)
    assert order == ["ack", "work"]


def _held_listener(
    inflight: InFlight, order: list[str], name: str
) -> Callable[..., Coroutine[Any, Any, None]]:
    """A tracked listener that acks, then records ``name`` as its work."""

    async def listener(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()
        order.append(name)

    return inflight.track(listener)


async def test_held_work_goes_on_one_per_turn_and_a_new_answer_stops_it() -> None:
    """Released all at once, fifty listeners' work would stand before the next ack;
    released one per turn, an answer that arrives meanwhile stops the release."""
    inflight = InFlight()
    order: list[str] = []
    async with inflight.answering():
        tasks = [
            asyncio.create_task(_held_listener(inflight, order, f"work {n}")(ack=no_op_ack))
            for n in range(5)
        ]
        await until(lambda: inflight.waiting == 5)
    await until(lambda: bool(order))
    async with inflight.answering():  # the next person's request arrives
        await turns(20)
        assert 1 <= len(order) <= 2
    await asyncio.gather(*tasks)
    assert sorted(order) == [f"work {n}" for n in range(5)]
    assert order == sorted(order)  # in the order they acked


async def test_held_work_goes_on_after_the_hold_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer that never goes out holds nobody for longer than HOLD_LIMIT."""
    monkeypatch.setattr("handlers.inflight.HOLD_LIMIT", 0.01)
    inflight = InFlight()
    order: list[str] = []
    async with inflight.answering():
        await _held_listener(inflight, order, "work")(ack=no_op_ack)
        assert order == ["work"]
        assert inflight.waiting == 0


async def test_work_before_the_ack_and_background_work_never_wait() -> None:
    """give_way outside a listener that has acked returns at once: the answer may be
    waiting for that very work."""
    inflight = InFlight()
    seen: list[int] = []

    async def listener(ack: Callable[[], Awaitable[None]]) -> None:
        await inflight.give_way()  # checks before the ack
        seen.append(inflight.waiting)
        await ack()

    async with inflight.answering():
        await inflight.give_way()  # a background job
        task = asyncio.create_task(inflight.track(listener)(ack=no_op_ack))
        await until(lambda: bool(seen))
        assert seen == [0]
    await task


async def test_a_listener_stopped_while_waiting_leaves_the_line() -> None:
    """A listener cancelled in line (a shutdown) does not stay in it."""
    inflight = InFlight()
    order: list[str] = []
    async with inflight.answering():
        task = asyncio.create_task(_held_listener(inflight, order, "work")(ack=no_op_ack))
        await until(lambda: inflight.waiting == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert inflight.waiting == 0
    assert order == []
