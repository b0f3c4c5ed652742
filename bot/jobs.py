"""The background life cycle: watch invitations, expire and remind, on a timer.

One ``tick`` does a round of work and says how long to wait before the next. Tests
call ``tick`` directly with a controlled clock; ``run`` is the loop around it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.exalate import ExalateError
from bot.service import ConnectionService

log = logging.getLogger(__name__)

MAX_BACKOFF_FACTOR = 16  # while Exalate is down, wait at most 16 intervals between polls


class LifecycleJobs:
    """Polls Exalate every ``interval`` seconds, backing off while it is unreachable."""

    def __init__(
        self,
        service: ConnectionService,
        *,
        interval: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._service = service
        self._interval = interval
        self._sleep = sleep
        self._failures = 0

    async def tick(self) -> float:
        """One round; returns the seconds to wait before the next.

        An outage is logged once when it starts and once when it ends, not every tick.
        """
        try:
            await self._service.poll_invitations()
        except ExalateError as error:
            if self._failures == 0:
                log.warning("exalate_poll_failing kind=%s; backing off", type(error).__name__)
            self._failures += 1
        else:
            if self._failures:
                log.info("exalate_poll_recovered after_failures=%s", self._failures)
            self._failures = 0
        await self._service.expire_and_remind()
        return self._interval * float(min(2**self._failures, MAX_BACKOFF_FACTOR))

    async def run(self) -> None:
        """Tick forever; an unexpected error is logged and the loop goes on."""
        while True:
            try:
                delay = await self.tick()
            except Exception as error:
                log.error("lifecycle_tick_failed kind=%s", type(error).__name__)
                delay = self._interval
            await self._sleep(delay)
