"""InFlight holds a listener's work after its ack until the answers pending are out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from bot.runtime.answer_first import InFlight
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

    async with inflight.answering():
        await inflight.track(listener)(ack=ack)  # Bolt has the ack: the work waits
        await turns()
        assert order == ["ack"]
    assert await inflight.drain(timeout=1) == 0
    assert order == ["ack", "work"]


async def test_bolt_gets_the_ack_as_it_is_given_and_the_work_runs_on() -> None:
    """The wrapper returns to Bolt at the ack, not at Bolt's next check for it; the
    listener's work goes on in its own task, which shutdown waits for."""
    inflight = InFlight()
    finish = asyncio.Event()

    async def listener(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()
        await finish.wait()

    returned = asyncio.create_task(inflight.track(listener)(ack=no_op_ack))
    await turns(5)  # no timer can fire in five turns of an idle loop
    assert returned.done()
    assert await inflight.drain(timeout=0) == 1
    finish.set()
    assert await inflight.drain(timeout=1) == 0


async def test_a_failure_before_the_ack_is_bolts_and_after_it_is_logged_by_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before the ack Bolt must see the failure, to answer it; after it nobody would,
    so it is logged, by kind only: its message may hold what someone typed."""
    inflight = InFlight()

    async def fails_first(ack: Callable[[], Awaitable[None]]) -> None:
        raise ValueError("secret-typed-text")

    async def fails_after(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()
        raise ValueError("secret-typed-text")

    with pytest.raises(ValueError, match="secret-typed-text"):
        await inflight.track(fails_first)(ack=no_op_ack)
    await inflight.track(fails_after)(ack=no_op_ack)
    assert await inflight.drain(timeout=1) == 0
    assert [r.getMessage() for r in caplog.records] == [
        "listener_failed listener=fails_after kind=ValueError"
    ]


async def test_a_listener_that_takes_no_ack_is_left_to_run_at_once() -> None:
    """Events: Bolt acks them itself once the wrapper returns, so it returns at once."""
    inflight = InFlight()
    finish = asyncio.Event()

    async def home_opened(event: object) -> None:
        await finish.wait()

    await inflight.track(home_opened)(event={})
    assert await inflight.drain(timeout=0) == 1
    finish.set()
    assert await inflight.drain(timeout=1) == 0


async def test_with_nothing_pending_nothing_waits() -> None:
    inflight = InFlight()
    order: list[str] = []

    async def ack() -> None:
        order.append("ack")

    async def listener(ack: object) -> None:
        await ack()  # type: ignore[operator]
        order.append("work")

    await inflight.track(listener)(ack=ack)
    assert await inflight.drain(timeout=1) == 0
    assert order == ["ack", "work"]


def _held_listener(
    inflight: InFlight, order: list[str], name: str
) -> Callable[..., Coroutine[Any, Any, None]]:
    """A tracked listener that acks, then records ``name`` as its work."""

    async def listener(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()
        order.append(name)

    return inflight.track(listener)


async def test_held_work_goes_on_one_at_a_time_and_a_new_answer_stops_it() -> None:
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
    assert await inflight.drain(timeout=1) == 0
    assert sorted(order) == [f"work {n}" for n in range(5)]
    assert order == sorted(order)  # in the order they acked


async def test_held_work_waits_for_quiet_turns_so_a_request_just_read_goes_first() -> None:
    """A request read from the socket is counted a few turns later (slack_sdk's queue,
    a task per envelope): one that is counted in the turns after the last answer went
    out still stops the release."""
    inflight = InFlight()
    order: list[str] = []
    async with inflight.answering():
        await _held_listener(inflight, order, "work")(ack=no_op_ack)
        await until(lambda: inflight.waiting == 1)
    await turns(2)
    async with inflight.answering():  # counted two turns after
        await turns(20)
        assert order == []
    await until(lambda: order == ["work"])


async def test_listeners_held_too_long_go_on_one_per_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past HOLD_LIMIT held work goes on although answers are pending, but not all of it
    in one turn, in front of every ack that turn would have sent."""
    monkeypatch.setattr("bot.runtime.answer_first.HOLD_LIMIT", 0.01)
    inflight = InFlight()
    turn = 0
    seen: list[int] = []

    async def count_turns() -> None:
        nonlocal turn
        while True:
            await asyncio.sleep(0)
            turn += 1

    async def listener(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()
        seen.append(turn)

    counter = asyncio.create_task(count_turns())
    async with inflight.answering():
        for _ in range(3):
            await inflight.track(listener)(ack=no_op_ack)
        await until(lambda: inflight.waiting == 3)
        time.sleep(0.02)  # noqa: ASYNC251 - a busy turn: all three past HOLD_LIMIT at its end
        assert await inflight.drain(timeout=1) == 0
    counter.cancel()
    assert len(seen) == len(set(seen)) == 3


async def test_the_line_moves_on_while_listeners_held_too_long_leave_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listeners past HOLD_LIMIT leave the line while the last answer goes out: the
    release that follows finds a listener still in line, not one on its way out."""
    monkeypatch.setattr("bot.runtime.answer_first.HOLD_LIMIT", 0.01)
    inflight = InFlight()
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, error: errors.append(error))
    order: list[str] = []
    async with inflight.answering():
        for n in range(3):
            await _held_listener(inflight, order, f"work {n}")(ack=no_op_ack)
        await until(lambda: inflight.waiting == 3)
        time.sleep(0.02)  # noqa: ASYNC251 - a busy turn: all three past HOLD_LIMIT at its end
    assert await inflight.drain(timeout=1) == 0
    assert sorted(order) == ["work 0", "work 1", "work 2"]
    assert errors == []


async def test_held_work_goes_on_after_the_hold_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer that never goes out holds nobody for longer than HOLD_LIMIT."""
    monkeypatch.setattr("bot.runtime.answer_first.HOLD_LIMIT", 0.01)
    inflight = InFlight()
    order: list[str] = []
    async with inflight.answering():
        await _held_listener(inflight, order, "work")(ack=no_op_ack)
        assert await inflight.drain(timeout=1) == 0
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
    working: list[asyncio.Task[Any]] = []

    async def listener(ack: Callable[[], Awaitable[None]]) -> None:
        working.extend(filter(None, [asyncio.current_task()]))
        await ack()
        order.append("work")

    async with inflight.answering():
        await inflight.track(listener)(ack=no_op_ack)
        await until(lambda: inflight.waiting == 1)
        working[0].cancel()
        assert await inflight.drain(timeout=1) == 0
        assert inflight.waiting == 0
    assert order == []
