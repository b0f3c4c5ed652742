"""The background life cycle: settle interrupted initiations, watch invitations, expire
and remind, post cards that could not be posted, on a timer, on one replica at a time.

Every ``interval`` one ``tick`` runs. The replica that holds the ``lifecycle`` lease does
the work; the others only read Exalate's list, so their ``/readyz`` and ``/exalate
status`` stay true, and take the lease over when its holder is gone. Each job of the
holder fails on its own: one that raises is logged and the others still run. Expiry,
reminders and cards run on every tick; the poll of Exalate backs off while Exalate is
unreachable (it skips 1, 3, 7, … up to 15 ticks), so an outage neither floods Jira nor
delays expiry. The poll reads Exalate's list even with nothing to watch, so ``jira``
tells the truth about Jira and Exalate when idle. Tests call ``tick`` with a controlled
clock; ``run`` is the loop around it. The heartbeat is not a job: it runs from start to
stop (``Replicas.beat_until``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.exalate import ExalateError
from bot.service import Lifecycle
from storage.replicas import Replicas

log = logging.getLogger(__name__)

MAX_BACKOFF_FACTOR = 16  # while Exalate is down, poll at most every 16 intervals
LIFECYCLE_LEASE = "lifecycle"
FORGET_REPLICAS_AFTER = 7 * 24 * 3600.0  # seconds: rows of replicas long gone are pruned


@dataclass
class JiraReach:
    """What the last poll or probe learnt of Jira: for ``/healthz`` and ``/readyz``."""

    reachable: bool | None = None
    """None until Jira was first asked."""
    last_answer: datetime | None = None
    last_error: str | None = None
    """The kind of the last failure (``ExalateTimeout``, …), while it lasts."""

    def as_json(self) -> dict[str, object]:
        return {
            "reachable": self.reachable,
            "last_answer": self.last_answer.isoformat() if self.last_answer else None,
            "last_error": self.last_error,
        }


class LifecycleJobs:
    """Runs the life cycle every ``interval`` seconds."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        replicas: Replicas,
        *,
        interval: float,
    ) -> None:
        self._lifecycle = lifecycle
        self._replicas = replicas
        self.holds_lease = False
        self.interval = interval
        self._failures = 0
        self._ticks_to_skip = 0
        self.last_successful_poll: datetime | None = None
        self.jira = JiraReach()
        self._stopping = asyncio.Event()

    async def tick(self) -> bool:
        """One round; returns whether Exalate was polled this time.

        An outage is logged once when it starts and once when it ends, not every tick.
        """
        if not await self._hold_lease():
            return await self._poll_when_due(settle=False)
        polled = await self._poll_when_due(settle=True)
        for job, name in (
            (self._lifecycle.expire_and_remind, "expiry"),
            (self._lifecycle.post_missing_cards, "card_posting"),
        ):
            try:
                await job()
            except Exception as error:
                log.error("%s_failed kind=%s", name, type(error).__name__)
        return polled

    async def _hold_lease(self) -> bool:
        """Whether this replica runs the life cycle now; on taking it, forget replicas
        long gone."""
        try:
            holds = await self._replicas.hold(LIFECYCLE_LEASE)
        except Exception as error:
            log.error("lease_check_failed kind=%s", type(error).__name__)
            holds = False
        if holds and not self.holds_lease:
            try:
                await self._replicas.prune(timedelta(seconds=FORGET_REPLICAS_AFTER))
            except Exception as error:
                log.error("replica_pruning_failed kind=%s", type(error).__name__)
        self.holds_lease = holds
        return holds

    async def _poll_when_due(self, *, settle: bool) -> bool:
        polled = self._ticks_to_skip == 0
        if polled:
            await self._poll(settle=settle)
        else:
            self._ticks_to_skip -= 1
        return polled

    async def _poll(self, *, settle: bool) -> None:
        try:
            if settle:
                await self._lifecycle.reconcile_stuck()
            await self._lifecycle.poll_invitations(settle=settle)
        except ExalateError as error:
            self._lifecycle.metrics.count_error(f"poll_{type(error).__name__}")
            if self._failures == 0:
                log.warning("exalate_poll_failing kind=%s; backing off", type(error).__name__)
            self._failures += 1
            self._ticks_to_skip = min(2**self._failures, MAX_BACKOFF_FACTOR) - 1
            self.jira.reachable, self.jira.last_error = False, type(error).__name__
        except Exception as error:
            log.error("poll_failed kind=%s", type(error).__name__)
        else:
            if self._failures:
                log.info("exalate_poll_recovered after_failures=%s", self._failures)
            self._failures = 0
            self.last_successful_poll = self._lifecycle.clock()
            self.jira = JiraReach(reachable=True, last_answer=self.last_successful_poll)

    async def run(self) -> None:
        """Tick until ``stop``; nothing a tick meets stops it.

        Stopping waits for the tick in progress instead of cancelling it, so no database
        transaction or Exalate call is cut off halfway.
        """
        while not self._stopping.is_set():
            await self.tick()
            await self._pause(self.interval)

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` or until ``stop``; whether stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask ``run`` to return after the tick in progress."""
        self._stopping.set()
