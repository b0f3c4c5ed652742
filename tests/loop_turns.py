"""Stepping the event loop in tests of code that hands work from task to task: turn by
turn, never by the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def turns(count: int = 10) -> None:
    """Let every ready task run ``count`` steps."""
    for _ in range(count):
        await asyncio.sleep(0)


async def until(predicate: Callable[[], bool], *, within: int = 100) -> None:
    """Let the loop turn until ``predicate`` holds; fail after ``within`` turns."""
    for _ in range(within):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def no_op_ack() -> None:
    """An ``ack`` that answers nothing, for a listener called directly."""
