"""A bot in a process of its own, as a replica runs: ``exalate-bot run --http`` on a
free loopback port, its JSON log lines read as they come, so a test awaits what the
process says (``serving_http``, ``lease_taken``) instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tests.processes import free_port

LOG_WAIT_SECONDS = 20.0


@dataclass
class BotProcess:
    """One running ``exalate-bot run --http``; ``lines`` is its log so far."""

    process: asyncio.subprocess.Process
    url: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    written: int = 0
    """Bytes of log read so far."""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.written += len(raw)
            text = raw.decode(errors="replace").strip()
            try:
                line = json.loads(text)
            except ValueError:
                line = None
            async with self._changed:
                self.lines.append(line if isinstance(line, dict) else {"event": text})
                self._changed.notify_all()
        async with self._changed:
            self.lines.append({"event": "process_ended"})
            self._changed.notify_all()

    def said(self, event: str) -> list[dict[str, Any]]:
        """The log lines so far of ``event`` (the bot logs JSON lines with an event name)."""
        return [line for line in self.lines if line.get("event") == event]

    async def says(self, event: str, count: int = 1) -> dict[str, Any]:
        """Wait until the process has logged ``event`` ``count`` times."""

        def enough() -> bool:
            return len(self.said(event)) >= count or bool(self.said("process_ended"))

        async with asyncio.timeout(LOG_WAIT_SECONDS), self._changed:
            await self._changed.wait_for(enough)
        found = self.said(event)
        assert len(found) >= count, f"the bot ended before logging {event!r}: {self.lines}"
        return found[count - 1]

    def kill(self) -> None:
        """SIGKILL: no clean stop, no leaving the replicas table, as in a crash."""
        self.process.send_signal(signal.SIGKILL)


@contextlib.asynccontextmanager
async def spawned(
    environment: dict[str, str], *arguments: str, url: str = ""
) -> AsyncIterator[BotProcess]:
    """``python *arguments`` with ``environment`` added to this one's, its log read as it
    comes; stopped (SIGTERM) on exit if it still runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *arguments,
        env=os.environ | environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    bot = BotProcess(process, url)
    reader = asyncio.create_task(bot._read())
    try:
        yield bot
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        await process.wait()
        await reader


@contextlib.asynccontextmanager
async def bot_process(environment: dict[str, str], *arguments: str) -> AsyncIterator[BotProcess]:
    """``exalate-bot run --http`` on a free loopback port with ``environment``, once it
    serves; stopped (SIGTERM) on exit."""
    port = free_port()
    http = ("run", "--http", "--host", "127.0.0.1", "--port", str(port))
    url = f"http://127.0.0.1:{port}/slack/events"
    async with spawned(environment, "-m", "bot", *http, *arguments, url=url) as bot:
        await bot.says("serving_http")
        yield bot
