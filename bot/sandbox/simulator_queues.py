"""The simulated node's two sync queues, as Exalate's REST monitoring API counts them:
``syncevents`` (outgoing: local changes waiting to go to partners) and ``syncrequests``
(incoming: partners' changes waiting to be applied).

Kept apart from ``exalate_simulator`` so that module stays about connections and
projects; this one holds what a test steers (each queue's size, which endpoints the
node has) and the bodies the endpoints answer. No events really wait: a listed event is
a synthetic ``{"id": n}``, enough for a reader that counts, which is all the bot does.

A removed endpoint answers as Jira does a REST path no resource serves: 404 with the
Atlassian REST framework's ``{"message": "null for uri: <url>", "status-code": 404}``,
which is what an Exalate version without the monitoring calls would send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from bot.exalate.models import SyncQueue

QueueRoute = Literal["syncevents", "syncrequests"]
"""The monitoring endpoints, by their last path segment (also their fault routes)."""

QUEUE_ROUTES: dict[QueueRoute, SyncQueue] = {
    "syncevents": SyncQueue.OUTGOING,
    "syncrequests": SyncQueue.INCOMING,
}
DEFAULT_LIMIT = 50
"""How many events an answer lists when no ``limit`` is asked for."""
MAX_LISTED = 1000
"""The most events one answer lists whatever ``limit`` asks: a test may set a queue of
millions to try the count, and listing them all would only cost the simulator memory."""


@dataclass(slots=True)
class SyncQueues:
    """Each queue's size (0 until set) and the endpoints the node lacks."""

    sizes: dict[SyncQueue, int] = field(default_factory=lambda: dict.fromkeys(SyncQueue, 0))
    removed: set[QueueRoute] = field(default_factory=set)

    def set_size(self, queue: SyncQueue | str, size: int) -> None:
        """``ValueError`` for an unknown queue or a size that is not a count, so a knob
        can answer 400 rather than serve a body no node would send."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("a queue size must be a non-negative integer")
        try:
            known = SyncQueue(queue)
        except ValueError:
            expected = sorted(q.value for q in SyncQueue)
            raise ValueError(f"unknown queue {queue!r}; expected one of {expected}") from None
        self.sizes[known] = size

    def remove(self, endpoint: str) -> None:
        self.removed.add(_endpoint(endpoint))

    def restore(self, endpoint: str) -> None:
        self.removed.discard(_endpoint(endpoint))

    def serves(self, endpoint: QueueRoute) -> bool:
        return endpoint not in self.removed

    def page(self, endpoint: QueueRoute, limit: int | None) -> dict[str, Any]:
        """The monitoring envelope: ``total`` the queue's size, ``results`` its first
        ``limit`` events (none for ``limit=0``, the count-only call)."""
        size = self.sizes[QUEUE_ROUTES[endpoint]]
        limit = DEFAULT_LIMIT if limit is None else limit
        listed = min(size, limit, MAX_LISTED)
        return {"limit": limit, "total": size, "results": [{"id": i} for i in range(1, listed + 1)]}


def missing_endpoint(url: str) -> web.Response:
    """Jira's answer to a REST path nothing serves (see the module docstring)."""
    return web.json_response({"message": f"null for uri: {url}", "status-code": 404}, status=404)


def _endpoint(name: str) -> QueueRoute:
    for known in QUEUE_ROUTES:
        if name == known:
            return known
    raise ValueError(f"unknown endpoint {name!r}; expected one of {sorted(QUEUE_ROUTES)}")
