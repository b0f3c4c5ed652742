"""InFlight holds a listener's work after its ack until the answers pending are out."""

from __future__ import annotations

import asyncio

from handlers.inflight import InFlight


async def _turns(count: int = 10) -> None:
    """Let every ready task run a few steps."""
    for _ in range(count):
        await asyncio.sleep(0)


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
        await _turns()
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
