"""What keeps HTTP mode standing when clients are slow, many or broken.

Every connection holds a file descriptor until it closes. Without bounds, a few hundred
clients that send their headers or body a byte at a time, or nothing at all, hold them
all: the process can then accept nothing, Slack's genuine requests and the probes time
out, and asyncio logs each failed accept (thousands of lines a second). Here:

- a request's headers must arrive within ``HEADER_SECONDS`` of the connection (or of
  the previous answer on a kept-alive one), its body within ``BODY_SECONDS`` (the gate,
  ``bot.runtime.http_gate``), and headers are bounded in size and number;
- the process serves at most ``max_connections`` at once, fewer where its open-files
  limit would not leave room for its own files and outbound connections, and accepts
  no more than that: the kernel's queue holds the next. At the cap a new connection
  takes the place of the oldest one that has not yet delivered a whole request, so a
  flood of slow clients can delay a genuine request by a round trip, not shut it out;
- the soft open-files limit is raised to the hard one at start;
- resource exhaustion and malformed HTTP are logged once a minute with a count, never
  once per connection, and never with the bytes the client sent.

A proxy in front (README: *Security*) does all of this better; this is what is left
when it does not, or when something reaches the port around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import itertools
import logging
import resource
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from bot.config import SettingsError

log = logging.getLogger(__name__)

HEADER_SECONDS = 10.0
"""From a connection (or the previous answer on it) to the end of the next request's
headers; an idle kept-alive connection is closed as late. Slack sends at once."""
BODY_SECONDS = 10.0
"""From the headers to the end of the body: Slack's own deadline is 3 s."""
LINGER_SECONDS = 1.0
"""How long a body left unread after the answer (a refusal) is drained before closing."""
SERVER_OPTIONS: dict[str, Any] = {
    "keepalive_timeout": HEADER_SECONDS,
    "lingering_time": LINGER_SECONDS,
    # Slack's request line and headers are far smaller; these bound what one slow
    # connection may make the process hold before its request is complete.
    "max_line_size": 2048,
    "max_field_size": 4096,
    "max_headers": 48,
}
"""aiohttp's server settings for every HTTP port of the bot."""
DEFAULT_MAX_CONNECTIONS = 900
"""Below systemd's default open-files limit (1024) with room for the process's own."""
RESERVED_FILES = 200
"""Descriptors kept for the process's own use: database, outbound HTTP (aiohttp's pool
holds up to 100), log and listening sockets."""
LOG_EVERY = 60.0
"""Seconds between two lines about the same kind of trouble."""
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_BATCH = 64
"""Connections taken from the kernel's queue at once (a burst of clicks), at most."""
ACCEPT_RETRY = 0.1
"""Seconds before accepting again after an accept failed for another reason."""
EXHAUSTED_PAUSE = 1.0
"""Seconds the accept loop waits for a connection to end when an accept failed for want
of descriptors and no connection could be closed."""


class Throttled:
    """One kind of trouble, logged at most once per ``every`` seconds with how many times
    it happened since the last line: a flood costs a line a minute, not one a request."""

    def __init__(
        self,
        event: str,
        *,
        every: float = LOG_EVERY,
        level: int = logging.WARNING,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.event = event
        self._log = logger
        self._every = every
        self._level = level
        self._clock = clock
        self._count = 0
        self._last: float | None = None

    def note(self, detail: str = "") -> None:
        """Count one; log if the last line is ``every`` seconds old. ``detail`` is the
        bot's own words (``kind=…``), never what a client sent."""
        self._count += 1
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            return
        suffix = f" {detail}" if detail else ""
        self._log.log(self._level, "%s count=%s%s", self.event, self._count, suffix)
        self._count, self._last = 0, now


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one (logged once), and return the
    soft limit now in force. The soft limit is often 1024 while the hard one allows far
    more: a process that serves connections should have what it is allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as error:
            kind = type(error).__name__
            log.warning("open_files_limit_not_raised soft=%s hard=%s kind=%s", soft, hard, kind)
            return soft
        log.info("open_files_limit soft=%s hard=%s raised_to=%s", soft, hard, wanted)
        return wanted
    log.info("open_files_limit soft=%s hard=%s", soft, hard)
    return soft


def connection_cap(wanted: int, open_files: int | None = None) -> int:
    """``wanted`` connections, or fewer where the open-files limit would not leave
    ``RESERVED_FILES`` for the process's own; refused below 1 (a settings error)."""
    if wanted < 1:
        raise SettingsError(f"--max-connections is {wanted}; it must be at least 1.")
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if open_files == resource.RLIM_INFINITY:
        return wanted
    room = max(open_files - RESERVED_FILES, 1)
    if wanted > room:
        log.warning(
            "max_connections_lowered wanted=%s to=%s open_files_limit=%s; raise the "
            "limit (LimitNOFILE=, ulimit -n) for more",
            wanted,
            room,
            open_files,
        )
        return room
    return wanted


class ConnectionLimit:
    """At most ``cap`` connections across the bot's ports. A connection is *working*
    from the moment its request's body has arrived until its handler answers; any other
    (waiting for headers or a body, idle between requests, draining) may be closed to
    make room, the oldest first, when another arrives. With none to close, the one that
    arrived waits, and no other is accepted, until a connection ends."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[asyncio.Transport, None] = {}  # oldest first
        self._working: set[asyncio.Transport] = set()
        self._arriving = 0
        """Accepted, their transports not made yet."""
        self._ended = asyncio.Event()
        self._shed = Throttled("connections_shed")
        self._exhausted = Throttled("accept_out_of_resources", level=logging.ERROR)

    @property
    def open(self) -> int:
        """Connections counted against the cap: served, or accepted and on their way."""
        return len(self._open) + self._arriving

    def accepted(self) -> None:
        self._arriving += 1

    def lost_on_the_way(self) -> None:
        self._arriving -= 1
        self._ended.set()

    def opened(self, transport: asyncio.Transport) -> None:
        self._arriving -= 1
        self._open[transport] = None

    def ended(self, transport: asyncio.Transport) -> None:
        self._open.pop(transport, None)
        self._working.discard(transport)
        self._ended.set()

    def shed(self, count: int) -> int:
        """Close up to ``count`` of the oldest connections not working; how many."""
        idle = list(itertools.islice((t for t in self._open if t not in self._working), count))
        for transport in idle:
            self.ended(transport)
            transport.abort()  # at once: closing politely would wait on the client
        if idle:
            self._shed.note(f"max_connections={self.cap}")
        return len(idle)

    async def room(self) -> None:
        """Return once one more connection (accepted, waiting) fits under the cap: at
        once while it does, else after closing the oldest idle one or, with none, once a
        connection ends. Only then is the next one accepted."""
        while self.open >= self.cap and not self.shed(1):
            self._ended.clear()
            await self._ended.wait()

    async def exhausted(self, error: OSError) -> None:
        """An accept failed for want of descriptors or memory: say so (once a minute),
        close a tenth of the waiting connections, or wait a moment for one to end."""
        self._exhausted.note(f"errno={errno.errorcode.get(error.errno or 0, error.errno)}")
        self._ended.clear()
        if not self.shed(max(1, self.open // 10)):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), EXHAUSTED_PAUSE)
        await asyncio.sleep(0)  # a transport closes its socket right after saying so

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Mark the connection working once its request's body has arrived, until its
        handler answers."""
        transport = request.transport
        if not isinstance(transport, asyncio.Transport):
            return await handler(request)
        answered = False

        def arrived() -> None:
            if not answered:  # a body drained after a refusal is no work
                self._working.add(transport)

        request.content.on_eof(arrived)
        try:
            return await handler(request)
        finally:
            answered = True
            self._working.discard(transport)


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted by a ``ConnectionLimit``."""

    def __init__(self, inner: asyncio.Protocol, limit: ConnectionLimit) -> None:
        self._inner = inner
        self._limit = limit
        self._transport: asyncio.Transport | None = None

    @property
    def made(self) -> bool:
        return self._transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream socket's, always
        self._transport = transport
        self._limit.opened(transport)
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._limit.ended(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class _Acceptor(asyncio.AbstractServer):
    """Accepts on listening sockets while a ``ConnectionLimit`` has room, a batch at a
    time. asyncio's own accept loop takes up to its backlog (1,024) connections at once,
    however many are open, and once descriptors run out logs an ERROR for each attempt
    and retries every second; this one stops at the cap, and says so once a minute."""

    def __init__(
        self,
        sockets: list[socket.socket],
        make: Callable[[], asyncio.Protocol],
        limit: ConnectionLimit,
    ) -> None:
        self.sockets = sockets
        self._make = make
        self._limit = limit
        self._failed = Throttled("accept_failed")
        self._arriving: set[asyncio.Task[None]] = set()
        self._tasks = [asyncio.create_task(self._accept(sock)) for sock in sockets]
        for task in self._tasks:
            task.add_done_callback(_said_if_failed)

    def close(self) -> None:
        """Stop accepting; each socket is closed once its accept has let go of it."""
        for task, sock in zip(self._tasks, self.sockets, strict=True):
            task.cancel()
            task.add_done_callback(functools.partial(_close, sock))
        for arriving in self._arriving:
            arriving.cancel()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def is_serving(self) -> bool:
        return any(not task.done() for task in self._tasks)

    async def start_serving(self) -> None:
        """Nothing: it serves from the start."""

    async def serve_forever(self) -> None:
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except ConnectionAbortedError:  # gone before it was taken
                continue
            except OSError as error:
                if error.errno in OUT_OF_RESOURCES:
                    await self._limit.exhausted(error)
                else:  # asyncio would log it and go on: so does this, once a minute
                    self._failed.note(f"errno={errno.errorcode.get(error.errno or 0, '-')}")
                    await asyncio.sleep(ACCEPT_RETRY)
                continue
            await self._limit.room()  # with one waiting: never closes one for nothing
            self._limit.accepted()
            self._serve(conn)
            self._take_waiting(sock)
            # A turn of the loop before the next: the connections closed to make room
            # release their descriptors, and the ones taken start being served.
            await asyncio.sleep(0)

    def _take_waiting(self, sock: socket.socket) -> None:
        """Take what else the kernel has queued, up to ``ACCEPT_BATCH`` and the cap,
        without waiting: a burst of clicks is served together, as asyncio would."""
        for _ in range(ACCEPT_BATCH - 1):
            if self._limit.open >= self._limit.cap:
                return
            try:
                conn, _ = sock.accept()
            except OSError:  # nothing more queued, or no descriptor left: the loop sees
                return
            conn.setblocking(False)
            self._limit.accepted()
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        """Serve ``conn`` (counted as accepted) with aiohttp's protocol, in a task."""
        task = asyncio.create_task(self._connect(conn, _Counted(self._make(), self._limit)))
        self._arriving.add(task)
        task.add_done_callback(self._arriving.discard)

    async def _connect(self, conn: socket.socket, protocol: _Counted) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: protocol, conn)
        except (OSError, RuntimeError, asyncio.CancelledError) as error:
            conn.close()  # the client left, the loop is closing, or the site stopped
            if not protocol.made:
                self._limit.lost_on_the_way()
            if isinstance(error, asyncio.CancelledError):
                raise


def _close(sock: socket.socket, _task: asyncio.Task[None]) -> None:
    sock.close()


def _said_if_failed(task: asyncio.Task[None]) -> None:
    """An accept loop that ended on its own: the port takes no more connections."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("accept_loop_ended kind=%s: restart the bot", type(error).__name__)


class LimitedSite(web.BaseSite):
    """A TCP site whose connections count against a ``ConnectionLimit``."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        limit: ConnectionLimit,
        *,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._where = (host, port)
        self._limit = limit

    @property
    def name(self) -> str:
        host, port = self._where
        return f"http://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None  # BaseSite refuses a runner not set up
        sockets = await _listening(*self._where, self._backlog)
        self._server = _Acceptor(sockets, server, self._limit)


async def _listening(host: str, port: int, backlog: int) -> list[socket.socket]:
    """A listening socket for each address ``host`` names, as asyncio's create_server
    makes them: address reuse on, an IPv6 socket for IPv6 only."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class QuietMalformedHttp(logging.Filter):
    """aiohttp logs each request it cannot parse at ERROR, quoting the bytes the client
    sent (a header line, a request line, whatever came). Those lines become one a
    minute, with a count and the kind of fault; other errors pass untouched."""

    def __init__(self) -> None:
        super().__init__()
        self._malformed = Throttled("http_malformed")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            self._malformed.note(f"kind={type(error).__name__}")
            return False
        return True


@contextlib.contextmanager
def quiet_malformed_http() -> Iterator[None]:
    """``QuietMalformedHttp`` on aiohttp's server logger while the block runs."""
    server_log = logging.getLogger("aiohttp.server")
    quiet = QuietMalformedHttp()
    server_log.addFilter(quiet)
    try:
        yield
    finally:
        server_log.removeFilter(quiet)
