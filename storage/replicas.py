"""Who is running: each bot process's heartbeat, and the leases that let one of them at a
time run a background job.

A replica is gone when its row is missing (it stopped and said so), when its heartbeat
is older than ``ttl``, or when it ran in this process table (same kernel boot, same PID
namespace) and its process no longer exists. The last rule makes a restart after a crash
known at once, without waiting out the ttl; a process that restarts with its old process
id (PID 1 in a container) is recognised by its new replica id. Containers that share a
host name but not a PID namespace are told apart, so each only goes by the other's
heartbeat. A lease is held as long as its holder is not gone, so a holder busy with a
slow Jira keeps it, and one that died loses it within ``ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.tables import LeaseRow, ReplicaRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Identity:
    """This process among the replicas: a fresh id at every start, its host, its pid and
    the process table that pid is valid in."""

    id: str
    host: str
    pid: int
    pid_namespace: str

    @classmethod
    def of_this_process(cls) -> Identity:
        host, pid = socket.gethostname(), os.getpid()
        return cls(f"{host[:40]}:{pid}:{secrets.token_hex(4)}", host, pid, pid_namespace())


def pid_namespace() -> str:
    """The process table this process's pid is valid in: the kernel's boot id and the PID
    namespace, on Linux; elsewhere the host name."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{boot}/{namespace}"


def process_exists(pid: int) -> bool:
    """Whether a process with ``pid`` runs on this host (signal 0 only checks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        return True
    return True


class Replicas:
    """This process's row among the replicas, and the leases it holds."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        me: Identity,
        *,
        ttl: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self.me = me
        self.ttl = ttl
        self._clock = clock

    async def join(self) -> None:
        """Say this process is running."""
        now = self._clock()
        async with self._sessions.begin() as session:
            session.add(
                ReplicaRow(
                    id=self.me.id,
                    host=self.me.host,
                    pid=self.me.pid,
                    pid_namespace=self.me.pid_namespace,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    async def beat(self) -> None:
        """Say this process is still running (every ``ttl`` / 3)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                sa.update(ReplicaRow)
                .where(ReplicaRow.id == self.me.id)
                .values(heartbeat_at=self._clock())
            )
        if not result.rowcount:  # type: ignore[attr-defined]
            await self.join()  # pruned while this process was stalled: join again

    async def beat_until(self, stopping: asyncio.Event) -> None:
        """Beat every ``ttl`` / 3 until ``stopping`` is set; a failed beat is logged and
        the next one tried. Runs from start to ``leave``, apart from the jobs, so the
        other replicas know this one lives while a tick waits on a slow Jira and while
        a stopping process finishes its clicks."""
        every = self.ttl.total_seconds() / 3
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), every)
            if stopping.is_set():
                return
            try:
                await self.beat()
            except Exception as error:
                log.error("heartbeat_failed kind=%s", type(error).__name__)

    async def leave(self) -> None:
        """Say this process stops: its leases are free for another replica at once."""
        async with self._sessions.begin() as session:
            await session.execute(
                sa.update(LeaseRow).where(LeaseRow.holder == self.me.id).values(holder=None)
            )
            await session.execute(sa.delete(ReplicaRow).where(ReplicaRow.id == self.me.id))

    async def gone(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` whose process is known to have stopped."""
        wanted = set(ids)
        if not wanted:
            return set()
        async with self._sessions() as session:
            rows = (
                await session.scalars(sa.select(ReplicaRow).where(ReplicaRow.id.in_(wanted)))
            ).all()
        now = self._clock()
        return wanted - {row.id for row in rows if not self._dead(row, now)}

    def _dead(self, row: ReplicaRow, now: datetime) -> bool:
        if row.id == self.me.id:
            return False
        if now - row.heartbeat_at > self.ttl:
            return True
        return row.pid_namespace == self.me.pid_namespace and (
            row.pid == self.me.pid or not process_exists(row.pid)
        )

    async def hold(self, lease: str) -> bool:
        """Whether this replica holds ``lease`` now, taking it if its holder is gone."""
        async with self._sessions() as session:
            row = await session.get(LeaseRow, lease)
        holder = row.holder if row is not None else None
        if holder == self.me.id:
            return True
        if holder is not None and not await self.gone([holder]):
            return False
        now = self._clock()
        try:
            async with self._sessions.begin() as session:
                if row is None:
                    session.add(LeaseRow(name=lease, holder=self.me.id, taken_at=now))
                    taken = True
                else:
                    result = await session.execute(
                        sa.update(LeaseRow)
                        .where(LeaseRow.name == lease, LeaseRow.holder.is_not_distinct_from(holder))
                        .values(holder=self.me.id, taken_at=now)
                    )
                    taken = bool(result.rowcount)  # type: ignore[attr-defined]
        except IntegrityError:  # another replica created the lease first
            return False
        if taken:
            log.info("lease_taken name=%s from=%s", lease, holder or "nobody")
        return taken

    async def prune(self, older_than: timedelta) -> None:
        """Forget replicas silent for ``older_than``: they are long gone."""
        async with self._sessions.begin() as session:
            await session.execute(
                sa.delete(ReplicaRow).where(ReplicaRow.heartbeat_at < self._clock() - older_than)
            )
