"""Answers the client cannot trust: nested deeper than JSON can be decoded, or larger than
it reads. Each ends as an ``ExalateError``, never as a RecursionError or a process that
reads without end."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.exalate import (
    BearerToken,
    ConnectionSpec,
    ExalateClient,
    ExalateNameConflict,
    ExalateServerError,
)
from bot.exalate.client import MAX_ANSWER_BYTES
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.simulator_knobs import RawAnswer

TOKEN = "pat-answer-limits-token"
SPEC = ConnectionSpec(
    local_short_name="acme",
    remote_short_name="partner",
    name="acme_to_partner",
    description="",
    incoming_project_key="SUP",
)
DEEP = b"[" * 100_000 + b"]" * 100_000
"""Far deeper than Python's decoder follows: decoding it raises RecursionError."""
MB = 1024 * 1024


@pytest.fixture(name="token")
def _token() -> str:
    return TOKEN


async def _no_wait(_: float) -> None:
    return None


def _client(
    session: aiohttp.ClientSession, server: TestServer, *, limit: int = MAX_ANSWER_BYTES
) -> ExalateClient:
    return ExalateClient(
        session,
        str(server.make_url("/")),
        BearerToken(TOKEN),
        read_retries=0,
        sleep=_no_wait,
        max_answer_bytes=limit,
    )


class TestDepth:
    async def test_a_deep_list_answer_is_a_server_error(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        sim.answer_raw("connections", RawAnswer(DEEP))

        with pytest.raises(ExalateServerError) as caught:
            await _client(session, server).connection_list()

        assert caught.value.status == 200
        assert "unexpected answer" in str(caught.value)

    async def test_a_deep_answer_to_create_is_a_server_error_and_may_have_created(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """A server error: the caller counts the create as uncertain, and it was made."""
        sim.answer_raw("create", RawAnswer(DEEP, status=201))

        with pytest.raises(ExalateServerError):
            await _client(session, server).create_connection(SPEC)

        assert sim.named(SPEC.name)["status"] == "PENDING"

    async def test_a_deep_value_inside_the_expected_shape_is_a_server_error(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        body = b'{"total": 1, "results": [{"id": 1, "name": ' + DEEP + b"}]}"
        sim.answer_raw("connections", RawAnswer(body))

        with pytest.raises(ExalateServerError):
            await _client(session, server).connection_list()

    async def test_a_deep_error_body_leaves_the_status_to_speak(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        nested = b'{"message": "taken", "errorMessages": ' + DEEP + b"}"
        sim.answer_raw("create", RawAnswer(nested, status=409))

        with pytest.raises(ExalateNameConflict) as caught:
            await _client(session, server).create_connection(SPEC)

        assert caught.value.detail is None  # the body could not be decoded at all

    async def test_non_text_error_messages_are_left_out_of_the_detail(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        body = b'{"errorMessages": ["Name taken", [[["x"]]], 7], "errors": {"name": [1]}}'
        sim.answer_raw("create", RawAnswer(body, status=409))

        with pytest.raises(ExalateNameConflict) as caught:
            await _client(session, server).create_connection(SPEC)

        assert caught.value.detail == "Name taken"


class TestSize:
    def test_the_bound_is_ten_megabytes(self) -> None:
        assert MAX_ANSWER_BYTES == 10 * MB

    @pytest.mark.parametrize("chunked", [False, True])
    async def test_an_answer_over_the_bound_is_refused_as_too_large(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer, chunked: bool
    ) -> None:
        """With a declared length or without one (chunked), the default bound holds."""
        sim.answer_raw("connections", RawAnswer(b" ", repeat=MAX_ANSWER_BYTES + 1, chunked=chunked))

        with pytest.raises(ExalateServerError) as caught:
            await _client(session, server).connection_list()

        assert "too large" in str(caught.value)
        assert caught.value.status == 200

    async def test_an_answer_at_the_bound_is_read(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        body = b'{"total": 0, "results": []}'
        padded = body + b" " * (64 * 1024 - len(body))
        sim.answer_raw("connections", RawAnswer(padded, chunked=True))

        listing = await _client(session, server, limit=64 * 1024).connection_list()

        assert listing.results == []

    async def test_an_endless_answer_is_not_read_to_its_end(
        self, session: aiohttp.ClientSession
    ) -> None:
        """The reading stops once the bound is passed: a 500 MB answer costs what the
        bound and the sockets' buffers hold, and little time."""
        sent = 0

        async def flood() -> AsyncIterator[bytes]:
            nonlocal sent
            chunk = b"[" + b"1," * (32 * 1024)
            for _ in range(500 * MB // len(chunk)):
                sent += len(chunk)
                yield chunk

        async def endless(_: web.Request) -> web.Response:
            return web.Response(body=flood(), content_type="application/json")

        app = web.Application()
        app.router.add_get("/{tail:.*}", endless)
        server = TestServer(app, host="127.0.0.1")
        async with server:
            started = time.monotonic()
            with pytest.raises(ExalateServerError) as caught:
                await _client(session, server, limit=MB).list_projects()
            elapsed = time.monotonic() - started

        assert "too large" in str(caught.value)
        assert sent < 100 * MB
        assert elapsed < 10

    async def test_a_too_large_error_answer_still_says_its_status(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        sim.answer_raw("create", RawAnswer(b"x", repeat=2 * MB, status=409))

        with pytest.raises(ExalateNameConflict) as caught:
            await _client(session, server, limit=MB).create_connection(SPEC)

        assert caught.value.detail is None
        assert sim.connections == {}  # only a 2xx raw answer to create creates
