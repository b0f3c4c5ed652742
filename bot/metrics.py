"""What ``GET /metrics`` shows, written by ``prometheus_client``.

Five families of the bot's own: requests by site and state (read from the database when
scraped), listeners still running, approvals, the latency of each kind of call to each
site's Exalate/Jira, and errors by kind (and site, where one is at fault). The ``site``
label takes only the configured sites' names, and ``call`` only route templates, so the
number of series is bounded whatever people type. Beside them, the client's process,
platform and garbage-collector families (``process_*``, ``python_*``) that dashboards for
any Python service expect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from bot.health.model import SiteView

# The text format has no place for a counter's start time, so the client writes it as a
# separate ``*_created`` series per counter and histogram: new series names, which
# the bot's scrape never had, each doubling the count of series. The switch is the
# client's own and process-wide; nothing else in the bot uses the client.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the client leaves it untyped

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)


class Metrics:
    """The bot's metrics, on a registry of their own: tests build many runtimes in one
    process, and the client's global registry refuses a second family of the same name."""

    CONTENT_TYPE: ClassVar[str] = CONTENT_TYPE_LATEST
    """The ``Content-Type`` of what ``render`` returns."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._requests = Gauge(
            "exalate_bot_requests",
            "Connection requests by site and state.",
            ["site", "state"],
            registry=self.registry,
        )
        self._database = Gauge(
            "exalate_bot_database_up",
            "1 when the last scrape could read the requests from the database, else 0.",
            registry=self.registry,
        )
        self._listeners = Gauge(
            "exalate_bot_listeners_running",
            "Slack listeners started and not finished, work after the ack included.",
            registry=self.registry,
        )
        self._approvals = Counter(
            "exalate_bot_approvals",
            "Approvals that won and started a connection.",
            registry=self.registry,
        )
        self._errors = Counter(
            "exalate_bot_errors",
            "Failures by kind, and by site where one is at fault.",
            ["kind", "site"],
            registry=self.registry,
        )
        self._calls = Histogram(
            "exalate_bot_exalate_call_seconds",
            "Latency of calls to each site's Exalate and Jira.",
            ["site", "call"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self._connection_status = Gauge(
            "exalate_connection_status",
            "1 for each connection's status at the last poll of its site.",
            ["site", "connection", "status"],
            registry=self.registry,
        )
        self._sync_queue = Gauge(
            "exalate_sync_queue",
            "Sync events waiting at the last poll of each site, by direction.",
            ["site", "direction"],
            registry=self.registry,
        )
        self._incidents_open = Gauge(
            "exalate_incidents_open",
            "Open sync-health incidents by site and kind.",
            ["site", "kind"],
            registry=self.registry,
        )

    def count_approval(self) -> None:
        self._approvals.inc()

    def count_error(self, kind: str, *, site: str = "") -> None:
        self._errors.labels(kind=kind, site=site).inc()

    def observe_call(self, site: str, call: str, seconds: float) -> None:
        """Record one call to a site's Exalate/Jira, e.g. ``POST
        /rest/issuehub/4.0/connections``."""
        self._calls.labels(site=site, call=call).observe(seconds)

    def observer(self, site: str) -> Callable[[str, float], None]:
        """``observe_call`` for one site's client."""
        return functools.partial(self.observe_call, site)

    def render(
        self,
        requests: Mapping[tuple[str, str], int] | None,
        *,
        listeners_running: int,
        health: SyncHealth | None = None,
    ) -> str:
        """The text a Prometheus scrape receives; ``requests`` counts requests by
        (site, state), None when the database could not say: the other series are
        served all the same, and ``exalate_bot_database_up`` is 0.

        The gauge is refilled on each scrape, so a state no request is in any more
        disappears, as it did before; nothing awaits between refill and render. Sync
        health is read from the database likewise (``health``; empty when it could
        not be read), so every replica serves the same series, bounded by the sites and
        the connections their last poll listed.
        """
        self._requests.clear()
        for (site, state), count in sorted((requests or {}).items()):
            self._requests.labels(site=site, state=state).set(count)
        self._database.set(0 if requests is None else 1)
        self._fill_health(health or SyncHealth())
        self._listeners.set(listeners_running)
        return generate_latest(self.registry).decode("utf-8")

    def _fill_health(self, health: SyncHealth) -> None:
        for gauge in (self._connection_status, self._sync_queue, self._incidents_open):
            gauge.clear()
        for view in health.views:
            for name, status in view.connections:
                self._connection_status.labels(
                    site=view.site, connection=name, status=status or "unknown"
                ).set(1)
            for direction, size in view.queues:
                self._sync_queue.labels(site=view.site, direction=direction).set(size)
        for (site, kind), count in sorted(health.incidents.items()):
            self._incidents_open.labels(site=site, kind=kind).set(count)


@dataclass(frozen=True, slots=True)
class SyncHealth:
    """What the metrics show of sync health: each site's last poll, open incidents by
    (site, kind)."""

    views: Sequence[SiteView] = ()
    incidents: Mapping[tuple[str, str], int] = field(default_factory=dict)
