"""The background life cycle: settle interrupted initiations, watch invitations, expire
and remind, and look at Slack, on a timer, on one replica at a time (Slack: on each).

Every ``interval`` one ``tick`` runs. The replica that holds the ``lifecycle`` lease does
the work; the others only read each site's connection list, so their ``/readyz`` and
``/exalate status`` stay true, and take the lease over when its holder is gone. Each job
of the holder fails on its own: one that raises is logged and the others still run.
Expiry and reminders run on every tick, and every replica looks at Slack (the
token, the approvals channel) for its ``/readyz`` and to release what waited for a
cause now gone; each site is polled once a tick, beside
the others, and its poll backs off while it fails (it skips 1, 3, 7, … up to 15 ticks),
so an outage neither floods that Jira nor delays expiry or another site. A poll that
fails for any reason, Exalate's or the bot's own, counts as an outage of its site: it
backs off, ``/readyz`` shows it, and it is logged once (an unforeseen kind with its
traceback), not on every tick. The
poll reads the list even with nothing to watch, so each site's health tells the truth
about its Jira and Exalate when idle. After each poll the holder
watches the site's sync health (``bot.service.health``), and reminds about incidents
nobody acknowledged. Tests call ``tick`` with a controlled
clock; ``run`` is the loop around it. The heartbeat is not a job: it runs from start to
stop (``Replicas.beat_until``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.exalate import ExalateError
from bot.metrics import Metrics
from bot.service import HealthWatch, Lifecycle, OutboxSender, Site, SiteHealth
from handlers.outbound.probe import SlackProbe
from storage.replicas import Replicas

log = logging.getLogger(__name__)

LIFECYCLE_LEASE = "lifecycle"
FORGET_REPLICAS_AFTER = 7 * 24 * 3600.0  # seconds: rows of replicas long gone are pruned


class LifecycleJobs:
    """Runs the life cycle every ``interval`` seconds."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        replicas: Replicas,
        metrics: Metrics,
        outbox: OutboxSender,
        *,
        interval: float,
        slack: SlackProbe | None = None,
        health: HealthWatch | None = None,
    ) -> None:
        self._lifecycle = lifecycle
        self._replicas = replicas
        self._metrics = metrics
        self._outbox = outbox
        self._slack = slack
        self._health = health
        self.holds_lease = False
        self.interval = interval
        self._stopping = asyncio.Event()

    async def tick(self) -> bool:
        """One round; returns whether any site was polled this time.

        The sites are polled side by side, each with its own back-off, so a site that
        is slow or down delays no other. An outage is logged once when it starts and
        once when it ends, not every tick.
        """
        settle = await self._hold_lease()
        polled = await asyncio.gather(
            *(self._poll_when_due(site, settle=settle) for site in self._lifecycle.sites)
        )
        jobs: list[tuple[Callable[[], Awaitable[object]], str]] = [
            (self._watch_slack, "slack_watch")
        ]
        if settle:
            jobs.append((self._lifecycle.expire_and_remind, "expiry"))
            jobs.append((self._release_gone, "outbox_release"))
            if self._health is not None:
                jobs.append((self._health.remind, "incident_reminders"))
        for job, name in jobs:
            try:
                await job()
            except Exception as error:
                log.error("%s_failed kind=%s", name, type(error).__name__)
        return any(polled)

    async def _release_gone(self) -> None:
        await self._outbox.release_gone(self._replicas)

    async def _watch_slack(self) -> None:
        """Look at Slack (every replica: each answers its own ``/readyz``)."""
        if self._slack is None:
            return
        look = await self._slack.look()
        if look.seen:
            await self._outbox.slack_seen(
                token_refused=look.token_refused,
                channel=self._slack.channel,
                channel_refused=look.channel_refused,
            )

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

    async def _poll_when_due(self, site: Site, *, settle: bool) -> bool:
        if not site.backoff.due():
            return False
        await self._poll(site, settle=settle)
        return True

    async def _poll(self, site: Site, *, settle: bool) -> None:
        try:
            listing = await self._lifecycle.poll(site, settle=settle)
        except Exception as error:
            self._poll_failed(site, error)
            if settle and self._health is not None:
                await self._watch(self._health.failed(site, error), site)
        else:
            if settle and self._health is not None:
                await self._watch(self._health.polled(site, listing), site)
            if site.backoff.failures:
                log.info(
                    "exalate_poll_recovered site=%s after_failures=%s",
                    site.name,
                    site.backoff.failures,
                )
            site.backoff.succeeded()
            site.health = SiteHealth(reachable=True, last_answer=self._lifecycle.clock())

    async def _watch(self, watching: Awaitable[None], site: Site) -> None:
        """Sync health after a poll; its failure (the database, say) is logged and
        waits for the next poll, which starts from what was stored."""
        try:
            await watching
        except Exception as error:
            log.error("health_watch_failed site=%s kind=%s", site.name, type(error).__name__)

    def _poll_failed(self, site: Site, error: Exception) -> None:
        """Back off from the site and mark it unready, whatever failed: an unforeseen
        exception retried every tick would log a traceback a tick and keep ``/readyz``
        green. Exalate's failures are logged when an outage begins; an unforeseen one
        with its traceback, when its kind first appears."""
        kind = type(error).__name__
        self._metrics.count_error(f"poll_{kind}", site=site.name)
        if isinstance(error, ExalateError):
            if site.backoff.failures == 0:
                log.warning("exalate_poll_failing site=%s kind=%s; backing off", site.name, kind)
        elif site.backoff.failures == 0 or site.health.last_error != kind:
            log.error("poll_failed site=%s kind=%s; backing off", site.name, kind, exc_info=error)
        site.backoff.failed()
        site.health.reachable, site.health.last_error = False, kind

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
