"""SIGTERM stops the bot through its orderly path, not by killing it mid-approval."""

from __future__ import annotations

import asyncio
import os
import signal

from bot.runtime.serve import until_stopped


async def test_sigterm_ends_the_wait_and_restores_handlers() -> None:
    """The serve loop's wait returns on SIGTERM; afterwards the signal is not caught."""
    waiting = asyncio.create_task(until_stopped())
    await asyncio.sleep(0)  # one turn: the task installs its handlers
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(waiting, timeout=5)
    loop = asyncio.get_running_loop()
    assert not loop.remove_signal_handler(signal.SIGTERM)  # already removed
