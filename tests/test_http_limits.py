"""HTTP mode's limits, piece by piece: the throttled log lines, the open-files limit, the
connection cap and its accept loop, and aiohttp's lines about malformed requests."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadStatusLine

from bot.cli.parser import command_line
from bot.config import SettingsError
from bot.runtime import http_limits
from bot.runtime.http_limits import (
    DEFAULT_MAX_CONNECTIONS,
    LOG_EVERY,
    RESERVED_FILES,
    SERVER_OPTIONS,
    ConnectionLimit,
    LimitedSite,
    QuietMalformedHttp,
    Throttled,
    connection_cap,
    raise_open_files_limit,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(event)]


class TestThrottled:
    def test_a_flood_is_one_line_a_minute_with_its_count(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        clock = Clock()
        throttled = Throttled("trouble", clock=clock)
        for _ in range(1000):
            throttled.note("kind=x")
        clock.now += LOG_EVERY
        throttled.note("kind=y")
        assert _lines(caplog, "trouble") == ["trouble count=1 kind=x", "trouble count=1000 kind=y"]


class TestOpenFiles:
    def test_the_soft_limit_is_raised_to_the_hard_one_and_said_once(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        limits = {"now": (1024, 65536)}
        monkeypatch.setattr(resource, "getrlimit", lambda _which: limits["now"])
        monkeypatch.setattr(resource, "setrlimit", lambda _which, pair: limits.update(now=pair))
        assert raise_open_files_limit() == 65536
        assert limits["now"] == (65536, 65536)
        assert _lines(caplog, "open_files_limit") == [
            "open_files_limit soft=1024 hard=65536 raised_to=65536"
        ]

    def test_a_limit_that_cannot_be_raised_is_kept_and_said(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        def refuse(_which: int, _pair: tuple[int, int]) -> None:
            raise ValueError("not allowed")

        monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
        monkeypatch.setattr(resource, "setrlimit", refuse)
        assert raise_open_files_limit() == 1024
        assert "open_files_limit_not_raised" in caplog.text

    def test_the_cap_leaves_room_for_the_process_own_files(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        assert connection_cap(900, 65536) == 900
        assert connection_cap(900, 1024) == 1024 - RESERVED_FILES
        assert "max_connections_lowered wanted=900 to=824 open_files_limit=1024;" in caplog.text
        with pytest.raises(SettingsError, match="at least 1"):
            connection_cap(0, 65536)

    def test_the_command_line_default_is_the_runtime_one(self) -> None:
        arguments = command_line().parse_args(["run", "--http"])
        assert arguments.max_connections == DEFAULT_MAX_CONNECTIONS
        given = command_line().parse_args(["run", "--http", "--max-connections", "50"])
        assert given.max_connections == 50


class TestQuietMalformedHttp:
    def test_parse_errors_become_a_count_and_other_errors_pass(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        quiet = QuietMalformedHttp()
        server = logging.getLogger("aiohttp.server")
        try:
            raise BadStatusLine("SECRET-BYTES")
        except BadStatusLine:
            parse = server.makeRecord(
                server.name, logging.ERROR, "", 0, "Error handling request", (), _exc_info()
            )
        try:
            raise RuntimeError("a bug of ours")
        except RuntimeError:
            other = server.makeRecord(
                server.name, logging.ERROR, "", 0, "Error handling request", (), _exc_info()
            )
        assert [quiet.filter(parse) for _ in range(3)] == [False] * 3
        assert quiet.filter(other)
        assert _lines(caplog, "http_malformed") == ["http_malformed count=1 kind=BadStatusLine"]
        assert "SECRET" not in caplog.text


def _exc_info() -> Any:
    return sys.exc_info()


async def _hello(_request: web.Request) -> web.Response:
    return web.Response(text="hello")


@asynccontextmanager
async def _site(
    limit: ConnectionLimit, handler: Callable[[web.Request], Any] = _hello
) -> AsyncIterator[int]:
    """``handler`` at ``GET /`` behind ``limit``, as serve_http sets it up; its port."""
    application = web.Application(middlewares=[limit.middleware])
    application.router.add_get("/", handler)
    runner = web.AppRunner(application, access_log=None, **SERVER_OPTIONS)
    await runner.setup()
    site = LimitedSite(runner, "127.0.0.1", 0, limit)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


class TestConnectionLimit:
    async def test_working_connections_are_never_closed_to_make_room(self) -> None:
        """Cap 2: one connection waits on a slow handler (working), one sent nothing. A
        third takes the silent one's place; the working one is answered."""
        limit = ConnectionLimit(2)
        handling, release = asyncio.Event(), asyncio.Event()

        async def slow(_request: web.Request) -> web.Response:
            handling.set()
            await release.wait()
            return web.Response(text="done")

        async with _site(limit, slow) as port, aiohttp.ClientSession() as http:
            working = asyncio.ensure_future(_text(http, f"http://127.0.0.1:{port}/"))
            await asyncio.wait_for(handling.wait(), 5)
            silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", port)
            third_reader, third_writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(silent_reader.read(), 5) == b""  # made room
            third_writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            release.set()
            assert await asyncio.wait_for(working, 5) == "done"
            assert b"done" in await asyncio.wait_for(third_reader.read(200), 5)
            for writer in (silent_writer, third_writer):
                writer.close()

    async def test_an_accept_out_of_descriptors_is_one_line_and_serving_goes_on(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Issue: asyncio logged "socket.accept() out of system resource" at ERROR for
        every attempt, 266,876 lines in 17 s. Five hundred failed accepts are one line;
        the connection waiting behind them is served once descriptors are back."""
        monkeypatch.setattr(http_limits, "EXHAUSTED_PAUSE", 0)
        loop = asyncio.get_running_loop()
        accept = loop.sock_accept
        failures = iter(range(500))

        async def out_of_files(sock: Any) -> Any:
            if next(failures, None) is not None:
                raise OSError(errno.EMFILE, "Too many open files")
            return await accept(sock)

        monkeypatch.setattr(loop, "sock_accept", out_of_files)
        async with _site(ConnectionLimit(10)) as port, aiohttp.ClientSession() as http:
            assert await _text(http, f"http://127.0.0.1:{port}/") == "hello"
        assert _lines(caplog, "accept_out_of_resources") == [
            "accept_out_of_resources count=1 errno=EMFILE"
        ]
        assert [r.levelno for r in caplog.records] == [logging.ERROR]


async def _text(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        return await response.text()
