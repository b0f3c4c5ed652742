"""One site's Exalate in memory, for the service tests: implements ``bot.ports.ExalatePort``
as strictly as the simulator does (a name Exalate has already is a 409), without HTTP."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from pydantic import SecretStr

from bot.exalate import (
    BearerToken,
    Connection,
    ConnectionSpec,
    CreatedConnection,
    ExalateEndpointMissing,
    ExalateError,
    ExalateNameConflict,
    Project,
)
from bot.exalate.models import ConnectionList, SyncQueue
from bot.exalate.statuses import QUEUE_PATHS
from bot.ports import JiraProject
from bot.service import Site
from bot.site_config import SiteConfig


@dataclass
class FakeExalate:
    """Connections by id, projects, and failures queued per call (``fail``)."""

    projects: list[Project] = field(
        default_factory=lambda: [Project(id="1", key="SUP", name="Support")]
    )
    connections: dict[int, Connection] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    """Every call received, in order: ``list``, ``projects``, ``project KEY``, ``create NAME``,
    ``queue outgoing``, ``queue incoming``."""
    page_size: int | None = None
    """The most connections the list holds, its ``total`` counting them all: what the
    client returns from a node that will not serve the rest by page. None: the whole list."""
    queues: dict[SyncQueue, int] = field(default_factory=lambda: dict.fromkeys(SyncQueue, 0))
    """How many events wait in each sync queue."""
    missing: set[SyncQueue] = field(default_factory=set)
    """The queues whose endpoint this node lacks: reading one is ``ExalateEndpointMissing``,
    as the client raises for the node's 404."""
    _failures: dict[str, deque[ExalateError]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(154))
    _codes: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail(self, call: str, error: ExalateError) -> None:
        """The next ``call`` (``list``, ``projects``, ``project``, ``create``, ``queue``
        for either sync queue, ``queue outgoing`` or ``queue incoming`` for one) raises
        ``error``."""
        self._failures.setdefault(call, deque()).append(error)

    def _maybe_fail(self, call: str) -> None:
        queue = self._failures.get(call)
        if queue:
            raise queue.popleft()

    def add(self, name: str, status: str = "PENDING") -> Connection:
        """A connection created outside the bot (in the console)."""
        connection = Connection(id=next(self._ids), name=name, status=status)
        self.connections[int(connection.id)] = connection
        return connection

    def set_status(self, name: str, status: str) -> None:
        for key, connection in self.connections.items():
            if connection.name == name:
                self.connections[key] = connection.model_copy(update={"status": status})

    async def connection_list(self) -> ConnectionList:
        self.calls.append("list")
        self._maybe_fail("list")
        results = list(self.connections.values())
        return ConnectionList(results=results[: self.page_size], total=len(results))

    async def list_projects(self) -> list[Project]:
        self.calls.append("projects")
        self._maybe_fail("projects")
        return list(self.projects)

    async def get_project(self, key: str) -> Project | None:
        self.calls.append(f"project {key}")
        self._maybe_fail("project")
        return next((p for p in self.projects if p.key == key), None)

    async def queue_size(self, queue: SyncQueue) -> int:
        self.calls.append(f"queue {queue.value}")
        self._maybe_fail(f"queue {queue.value}")
        self._maybe_fail("queue")
        if queue in self.missing:
            raise ExalateEndpointMissing(
                f"This node has no {QUEUE_PATHS[queue]} endpoint; the {queue.value} sync"
                " queue is not watched.",
                status=404,
            )
        return self.queues[queue]

    async def create_connection(self, spec: ConnectionSpec) -> CreatedConnection:
        self.calls.append(f"create {spec.name}")
        self._maybe_fail("create")
        if any(c.name.casefold() == spec.name.casefold() for c in self.connections.values()):
            raise ExalateNameConflict(f"A connection named {spec.name} exists.", status=409)
        connection = self.add(spec.name)
        return CreatedConnection(
            id=connection.id,
            name=spec.name,
            status="PENDING",
            invitation_code=SecretStr(f"CODE{next(self._codes):04d}"),
        )


def fake_site(
    name: str = "default",
    exalate: FakeExalate | None = None,
    **settings: object,
) -> Site:
    """A site over a ``FakeExalate``, its lists cached for a minute; a token unless
    ``credentials`` says otherwise."""
    credentials = settings.pop("credentials", BearerToken(f"{name}-token"))
    config = SiteConfig(
        name,
        f"https://jira-{name}.example.test",
        credentials,  # type: ignore[arg-type]
        **settings,  # type: ignore[arg-type]
    )
    return Site.of(config, exalate or FakeExalate(), list_ttl=60)


__all__ = ["FakeExalate", "JiraProject", "fake_site"]
