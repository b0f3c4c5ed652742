"""Credentials: the header each kind sends to the simulator over loopback, the refusals
that become ExalateAuthError, and secrets kept out of repr and every error text."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.exalate import (
    BasicAuth,
    BearerToken,
    ConnectionSpec,
    Credentials,
    ExalateAuthError,
    ExalateClient,
    ExalateError,
    ExalateTimeout,
    ExalateUnreachable,
)
from bot.sandbox.exalate_simulator import Simulator

USER = "exalate-bot"
PASSWORD = "correct horse battery"
ENCODED = "ZXhhbGF0ZS1ib3Q6Y29ycmVjdCBob3JzZSBiYXR0ZXJ5"  # base64("exalate-bot:correct …")
TOKEN = "pat-c2l0ZS10b2tlbi1mb3ItYXV0aC10ZXN0cw"
BASIC = BasicAuth(USER, PASSWORD)
BEARER = BearerToken(TOKEN)
SPEC = ConnectionSpec(
    local_short_name="acme",
    remote_short_name="partner",
    name="acme_to_partner",
    description="",
    incoming_project_key="SUP",
)


@asynccontextmanager
async def _jira(app: web.Application) -> AsyncIterator[str]:
    """``app`` on a loopback port; yields its base URL."""
    server = TestServer(app, host="127.0.0.1")
    async with server:
        yield str(server.make_url("/"))


def _client(
    session: aiohttp.ClientSession, url: str, credentials: Credentials, **options: Any
) -> ExalateClient:
    return ExalateClient(session, url, credentials, read_retries=0, **options)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestCredentials:
    def test_bearer_header(self) -> None:
        """A token goes out as 'Bearer <token>' and is the one secret to redact."""
        assert BEARER.header() == f"Bearer {TOKEN}"
        assert BEARER.secrets() == (TOKEN,)

    def test_basic_header_is_base64_of_user_colon_password(self) -> None:
        """Basic is base64 of 'username:password'; the password and the encoded part are
        both secrets, since either gives the password away."""
        assert BASIC.header() == f"Basic {ENCODED}"
        assert set(BASIC.secrets()) == {PASSWORD, ENCODED}

    def test_basic_encodes_utf8(self) -> None:
        """Non-ASCII names and passwords are UTF-8; a colon in the password is fine."""
        assert BasicAuth("jürgen", "pä:ss").header() == "Basic asO8cmdlbjpww6Q6c3M="

    @pytest.mark.parametrize("credentials", [BEARER, BASIC], ids=["bearer", "basic"])
    def test_repr_and_str_hide_the_secret(self, credentials: Credentials) -> None:
        """Neither repr nor str shows a secret; the username may show."""
        for text in (repr(credentials), str(credentials)):
            for secret in credentials.secrets():
                assert secret not in text
        assert USER in repr(BASIC)

    @pytest.mark.parametrize(
        ("make", "what"),
        [
            (lambda: BearerToken(""), "token must not be empty"),
            (lambda: BearerToken("  \t"), "token must not be empty"),
            (lambda: BearerToken("pat-with\nnewline"), "control characters"),
            (lambda: BasicAuth(USER, ""), "password must not be empty"),
            (lambda: BasicAuth(USER, "   "), "password must not be empty"),
            (lambda: BasicAuth("", PASSWORD), "username must not be empty"),
            (lambda: BasicAuth("a:b", PASSWORD), "username must not contain ':'"),
        ],
    )
    def test_bad_values_are_refused_without_quoting_them(self, make: Any, what: str) -> None:
        """A missing or malformed secret is a ValueError naming the field, not its value."""
        with pytest.raises(ValueError, match=what) as caught:
            make()

        assert PASSWORD not in str(caught.value)
        assert "newline" not in str(caught.value)

    async def test_url_with_a_password_is_refused(self, session: aiohttp.ClientSession) -> None:
        """A password in the base URL would be quoted by 'could not reach' errors."""
        with pytest.raises(ValueError, match="must not contain a user or password") as caught:
            ExalateClient(session, f"http://{USER}:{PASSWORD}@127.0.0.1/", BASIC)

        assert PASSWORD not in str(caught.value)


class TestOverLoopback:
    @pytest.mark.parametrize(
        ("accepts", "credentials"),
        [({"token": TOKEN}, BEARER), ({"basic": (USER, PASSWORD)}, BASIC)],
        ids=["bearer", "basic"],
    )
    async def test_every_call_sends_the_credentials_header(
        self, session: aiohttp.ClientSession, accepts: dict[str, Any], credentials: Credentials
    ) -> None:
        """Each kind of call carries the credentials' header, and the simulator set for
        exactly those credentials answers it."""
        simulator = Simulator(**accepts)
        async with _jira(simulator.app) as url:
            client = _client(session, url, credentials)
            await client.create_connection(SPEC)
            await client.list_connections()
            await client.list_projects()
            assert await client.get_project("SUP") is not None
            await client.myself()
            await client.server_info()

        assert len(simulator.requests) == 6
        for request in simulator.requests:
            assert request.headers["Authorization"] == credentials.header()

    @pytest.mark.parametrize(
        ("accepts", "credentials"),
        [
            ({"basic": (USER, PASSWORD)}, BEARER),
            ({"basic": (USER, PASSWORD)}, BasicAuth(USER, "wrong password")),
            ({"basic": (USER, PASSWORD)}, BasicAuth("someone-else", PASSWORD)),
            ({"token": TOKEN}, BasicAuth(USER, TOKEN)),
        ],
        ids=["bearer-to-basic", "wrong-password", "wrong-user", "basic-to-bearer"],
    )
    async def test_wrong_scheme_or_password_is_auth_error(
        self, session: aiohttp.ClientSession, accepts: dict[str, Any], credentials: Credentials
    ) -> None:
        """A refused credential is a 401 ExalateAuthError that quotes no secret."""
        simulator = Simulator(**accepts)
        async with _jira(simulator.app) as url:
            with pytest.raises(ExalateAuthError) as caught:
                await _client(session, url, credentials).myself()

        assert caught.value.status == 401
        for text in (str(caught.value), repr(caught.value)):
            for secret in (*credentials.secrets(), credentials.header()):
                assert secret not in text

    async def test_basic_refusal_names_username_and_password(
        self, session: aiohttp.ClientSession
    ) -> None:
        """A refused basic login says what to check, not JIRA_TOKEN."""
        simulator = Simulator(basic=(USER, PASSWORD))
        async with _jira(simulator.app) as url:
            with pytest.raises(ExalateAuthError) as caught:
                await _client(session, url, BasicAuth(USER, "nope-nope")).list_connections()

        assert "username and password" in str(caught.value)
        assert "JIRA_TOKEN" not in str(caught.value)

    async def test_a_refusal_names_the_sites_own_variable(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Each site keeps its secret in a variable of its own: the refusal names it."""
        simulator = Simulator(token="right-token")
        async with _jira(simulator.app) as url:
            client = ExalateClient(
                session, url, BearerToken("wrong-token"), credentials_from="JIRA_TOKEN_EU"
            )
            with pytest.raises(ExalateAuthError) as caught:
                await client.list_connections()
        assert "Check that JIRA_TOKEN_EU is a valid" in str(caught.value)


class TestNoErrorShowsThePassword:
    async def test_echoed_secrets_are_scrubbed(self, session: aiohttp.ClientSession) -> None:
        """A server message echoing the password or the header reaches no error text."""
        simulator = Simulator(basic=(USER, PASSWORD))
        simulator.fail("create", 400, message=f"bad login {PASSWORD} from Basic {ENCODED}")
        async with _jira(simulator.app) as url:
            with pytest.raises(ExalateError) as caught:
                await _client(session, url, BASIC).create_connection(SPEC)

        assert caught.value.detail is not None
        assert "[secret]" in caught.value.detail
        for text in (str(caught.value), repr(caught.value), caught.value.detail):
            assert PASSWORD not in text
            assert ENCODED not in text

    async def test_redirect_location_is_scrubbed(self, session: aiohttp.ClientSession) -> None:
        """A redirect whose Location carries the password is reported without it."""

        async def moved(_: web.Request) -> web.Response:
            raise web.HTTPFound(f"https://jira.example.com/login.jsp?os_password={PASSWORD}")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", moved)
        async with _jira(app) as url:
            with pytest.raises(ExalateError) as caught:
                await _client(session, url, BASIC).myself()

        assert "jira.example.com" in str(caught.value)
        assert PASSWORD not in str(caught.value)

    async def test_no_failure_carries_a_secret(self, session: aiohttp.ClientSession) -> None:
        """Timeouts, refusals and every HTTP error: no password, header or cause."""
        simulator = Simulator(basic=(USER, PASSWORD))
        failures: list[ExalateError] = []
        with pytest.raises(ExalateUnreachable) as refused:
            await _client(session, f"http://127.0.0.1:{_free_port()}", BASIC).myself()
        failures.append(refused.value)
        async with _jira(simulator.app) as url:
            simulator.read_latency = 0.3
            with pytest.raises(ExalateTimeout) as timeout:
                await _client(session, url, BASIC, read_timeout=0.05).list_projects()
            failures.append(timeout.value)
            simulator.read_latency = 0.0
            client = _client(session, url, BASIC)
            for status in (400, 401, 403, 404, 409, 429, 500):
                simulator.fail("connections", status)
                with pytest.raises(ExalateError) as caught:
                    await client.list_connections()
                failures.append(caught.value)

        assert PASSWORD not in repr(client)
        for failure in failures:
            for text in (str(failure), repr(failure)):
                assert PASSWORD not in text
                assert ENCODED not in text
            assert failure.__cause__ is None
