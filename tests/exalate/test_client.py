"""ExalateClient against the simulator over real loopback HTTP: answers, wire format, errors."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.exalate import (
    BasicAuth,
    BearerToken,
    ConnectionSpec,
    CreatedConnection,
    Credentials,
    ExalateAuthError,
    ExalateBadRequest,
    ExalateCallNotTaken,
    ExalateClient,
    ExalateEndpointMissing,
    ExalateError,
    ExalateNameConflict,
    ExalateNotSent,
    ExalateRateLimited,
    ExalateRejected,
    ExalateServerError,
    ExalateTimeout,
    ExalateUnavailable,
    ExalateUnreachable,
)
from bot.exalate.models import STATUS_MAX
from bot.metrics import Metrics
from bot.sandbox.exalate_simulator import Simulator
from tests.exalate.conftest import Sleeps

TOKEN = "pat-Zm9vYmFyLXNlY3JldC10b2tlbi12YWx1ZQ"
BEARER = BearerToken(TOKEN)
SPEC = ConnectionSpec(
    local_short_name="acme",
    remote_short_name="partner",
    name="acme_to_partner",
    description="Support tickets for Partner Ltd",
    incoming_project_key="SUP",
)


@pytest.fixture(name="token")
def _token() -> str:
    return TOKEN


def _client_for(
    session: aiohttp.ClientSession,
    server: TestServer,
    credentials: Credentials = BEARER,
    *,
    read_timeout: float = 10.0,
    create_timeout: float = 15.0,
    read_retries: int = 0,
    sleep: Sleeps | None = None,
) -> ExalateClient:
    # make_url("/") ends in a slash, as a JIRA_URL often does: the client must cope.
    return ExalateClient(
        session,
        str(server.make_url("/")),
        credentials,
        read_timeout=read_timeout,
        create_timeout=create_timeout,
        read_retries=read_retries,
        sleep=sleep or Sleeps(),
    )


@pytest.fixture(name="client")
def _client(session: aiohttp.ClientSession, server: TestServer) -> ExalateClient:
    return _client_for(session, server)


class TestReads:
    async def test_list_projects(self, client: ExalateClient) -> None:
        """Projects come back typed, with Jira's string ids."""
        projects = await client.list_projects()

        assert [p.key for p in projects][:3] == ["SUP", "DEV", "OPS"]
        assert projects[0].name == "Support"
        assert projects[0].id == "10000"

    async def test_list_projects_beyond_one_hundred(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """All projects are returned even when there are more than a hundred."""
        sim.set_project_count(150)

        projects = await client.list_projects()

        assert len(projects) == 150
        assert projects[-1].key == "P0150"

    async def test_one_project_by_key(self, sim: Simulator, client: ExalateClient) -> None:
        """GET /rest/api/2/project/{key}: the project, or None for a key Jira lacks."""
        project = await client.get_project("SUP")

        assert project is not None
        assert (project.key, project.name) == ("SUP", "Support")
        assert await client.get_project("NOPE") is None
        sim.fail("project", 500)
        with pytest.raises(ExalateServerError):
            await client.get_project("SUP")

    async def test_list_connections_empty(self, client: ExalateClient) -> None:
        """A Jira without connections yields an empty list."""
        assert await client.list_connections() == []

    async def test_list_connections(self, sim: Simulator, client: ExalateClient) -> None:
        """Connections carry id, name and Exalate's status string as is."""
        await client.create_connection(SPEC)
        sim.set_status("acme_to_partner", "DEACTIVATED")

        [connection] = await client.list_connections()

        assert (connection.id, connection.name, connection.status) == (
            154,
            "acme_to_partner",
            "DEACTIVATED",
        )

    async def test_myself(self, client: ExalateClient) -> None:
        """myself names the token's user."""
        user = await client.myself()

        assert (user.name, user.display_name) == ("exalate-bot", "Exalate Bot")

    async def test_server_info(self, client: ExalateClient) -> None:
        """server_info reports Jira's version and deployment type."""
        info = await client.server_info()

        assert info.version == "9.12.15"
        assert info.version_numbers == [9, 12, 15]
        assert info.deployment_type == "DataCenter"


class TestCreate:
    async def test_returns_pending_connection_with_code(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """A create returns the new PENDING connection and its invitation code."""
        created = await client.create_connection(SPEC)

        assert (created.id, created.name, created.status) == (154, "acme_to_partner", "PENDING")
        stored = sim.connections[154]["invitationCode"]
        assert created.invitation_code.get_secret_value() == stored

    async def test_sends_exact_wire_body(self, sim: Simulator, client: ExalateClient) -> None:
        """The POST body is exactly the documented private, script-mode request."""
        await client.create_connection(SPEC)

        assert sim.create_calls == [
            {
                "connectionType": "PRIVATE",
                "configurationMode": "SCRIPT",
                "localInstanceShortName": "acme",
                "remoteInstanceShortName": "partner",
                "name": "acme_to_partner",
                "description": "Support tickets for Partner Ltd",
                "incomingProjectKey": "SUP",
            }
        ]

    async def test_every_call_sends_the_contract_headers(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """Every call carries the bearer token, Accept JSON and the XSRF opt-out."""
        await client.create_connection(SPEC)
        await client.list_connections()
        await client.list_projects()
        await client.myself()
        await client.server_info()

        assert [(r.method, r.path) for r in sim.requests] == [
            ("POST", "/rest/issuehub/4.0/connections"),
            ("GET", "/rest/issuehub/4.0/connections"),
            ("GET", "/rest/api/2/project"),
            ("GET", "/rest/api/2/myself"),
            ("GET", "/rest/api/2/serverInfo"),
        ]
        for request in sim.requests:
            assert request.headers["Authorization"] == f"Bearer {TOKEN}"
            assert request.headers["Accept"] == "application/json"
            assert request.headers["X-Atlassian-Token"] == "no-check"
        assert sim.requests[0].headers["Content-Type"] == "application/json"

    async def test_repr_hides_invitation_code(self, client: ExalateClient) -> None:
        """Neither repr nor str of a created connection shows the invitation code."""
        created = await client.create_connection(SPEC)
        code = created.invitation_code.get_secret_value()

        assert code not in repr(created)
        assert code not in str(created)

    async def test_connection_list_never_shows_code(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """The connection list answered after a create holds no invitation code."""
        await client.create_connection(SPEC)
        code = sim.connections[154]["invitationCode"]

        connections = await client.list_connections()

        assert code not in repr(connections)


class TestStatusMapping:
    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (400, ExalateBadRequest),
            (401, ExalateAuthError),
            (403, ExalateAuthError),
            (404, ExalateEndpointMissing),
            (405, ExalateEndpointMissing),
            (409, ExalateNameConflict),
            (418, ExalateBadRequest),
            (429, ExalateRateLimited),
            (500, ExalateServerError),
            (503, ExalateServerError),
        ],
    )
    async def test_create_status_maps_to_typed_error(
        self, sim: Simulator, client: ExalateClient, status: int, error: type[ExalateError]
    ) -> None:
        """Each HTTP error status on create raises its own error type, carrying the status."""
        sim.fail("create", status, message="Something went wrong")

        with pytest.raises(error) as caught:
            await client.create_connection(SPEC)

        assert caught.value.status == status
        assert caught.value.detail == "Something went wrong"
        assert "Something went wrong" in str(caught.value)

    @pytest.mark.parametrize(
        ("status", "family"),
        [(429, ExalateUnavailable), (503, ExalateUnavailable), (400, ExalateRejected)],
    )
    async def test_errors_say_whether_a_retry_may_help(
        self, sim: Simulator, client: ExalateClient, status: int, family: type[ExalateError]
    ) -> None:
        """Transient failures are ExalateUnavailable, refusals ExalateRejected."""
        sim.fail("connections", status)

        with pytest.raises(family):
            await client.list_connections()

    async def test_rate_limit_reads_retry_after(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """A 429's Retry-After header becomes retry_after, in seconds."""
        sim.fail("projects", 429, retry_after=7)

        with pytest.raises(ExalateRateLimited) as caught:
            await client.list_projects()

        assert caught.value.retry_after == 7.0
        assert "7 s" in str(caught.value)

    async def test_rate_limit_without_retry_after(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """A 429 without Retry-After leaves retry_after unset."""
        sim.fail("projects", 429)

        with pytest.raises(ExalateRateLimited) as caught:
            await client.list_projects()

        assert caught.value.retry_after is None

    async def test_missing_create_endpoint_points_to_console(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """A 404 on create tells the admin to use the Exalate console instead."""
        sim.fail("create", 404)

        with pytest.raises(ExalateEndpointMissing) as caught:
            await client.create_connection(SPEC)

        message = str(caught.value)
        assert "no connection-creation endpoint" in message
        assert "HTTP 404 on POST /rest/issuehub/4.0/connections" in message
        assert "Exalate console" in message

    async def test_jira_error_messages_become_detail(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """Jira's errorMessages body is read into detail, like Exalate's message."""
        sim.fail("myself", 403, message="You are not an administrator")

        with pytest.raises(ExalateAuthError) as caught:
            await client.myself()

        assert caught.value.detail == "You are not an administrator"

    async def test_long_detail_is_trimmed(self, sim: Simulator, client: ExalateClient) -> None:
        """A long server message is cut to 300 characters."""
        sim.fail("create", 400, message="x" * 1000)

        with pytest.raises(ExalateBadRequest) as caught:
            await client.create_connection(SPEC)

        assert caught.value.detail is not None
        assert len(caught.value.detail) == 300

    async def test_wrong_token_is_auth_error(
        self, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """A token the server does not know raises ExalateAuthError."""
        client = _client_for(session, server, BearerToken("not-the-token"))

        with pytest.raises(ExalateAuthError) as caught:
            await client.list_connections()

        assert caught.value.status == 401

    async def test_duplicate_name_is_name_conflict(self, client: ExalateClient) -> None:
        """Creating a second connection with the same name, in any case, is a name conflict."""
        await client.create_connection(SPEC)

        with pytest.raises(ExalateNameConflict) as caught:
            await client.create_connection(SPEC.model_copy(update={"name": "ACME_to_partner"}))

        assert caught.value.detail == "Connection 'ACME_to_partner' already exists"

    async def test_unknown_project_is_bad_request(self, client: ExalateClient) -> None:
        """Exalate's 400 for an unknown incoming project raises ExalateBadRequest."""
        spec = SPEC.model_copy(update={"incoming_project_key": "NOPE"})

        with pytest.raises(ExalateBadRequest) as caught:
            await client.create_connection(spec)

        assert caught.value.detail == "Project 'NOPE' does not exist."


class TestUnexpectedAnswers:
    async def test_wrong_json_shape_is_server_error(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """A 2xx whose JSON lacks the expected fields raises ExalateServerError."""
        sim.fail("create", 201, message="invitation-code-lookalike")

        with pytest.raises(ExalateServerError) as caught:
            await client.create_connection(SPEC)

        assert "unexpected answer" in str(caught.value)
        assert "invitation-code-lookalike" not in str(caught.value)
        assert caught.value.detail is None

    async def test_html_page_is_server_error(self, session: aiohttp.ClientSession) -> None:
        """A 2xx HTML page (JIRA_URL pointing at a web page) raises ExalateServerError."""

        async def page(_: web.Request) -> web.Response:
            return web.Response(text="<html>Log in</html>", content_type="text/html")

        app = web.Application()
        app.router.add_get("/{tail:.*}", page)
        server = TestServer(app, host="127.0.0.1")
        async with server:
            client = _client_for(session, server)

            with pytest.raises(ExalateServerError) as caught:
                await client.list_projects()

        assert caught.value.status == 200

    async def test_a_status_longer_than_any_known_is_cut_to_what_is_stored(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Statuses are opaque and stored (64 characters); an absurd one is cut short
        rather than failing the list or a database write."""

        async def listing(_: web.Request) -> web.Response:
            results = [{"id": 1, "name": "a_to_b", "status": "PENDING_" + "X" * 200}]
            return web.json_response({"total": 1, "results": results})

        app = web.Application()
        app.router.add_get("/{tail:.*}", listing)
        server = TestServer(app, host="127.0.0.1")
        async with server:
            (connection,) = await _client_for(session, server).list_connections()

        assert connection.status == ("PENDING_" + "X" * 200)[:STATUS_MAX]

    async def test_redirect_is_not_followed(self, session: aiohttp.ClientSession) -> None:
        """A redirect is reported as a wrong JIRA_URL rather than followed."""

        async def moved(_: web.Request) -> web.Response:
            raise web.HTTPFound("https://jira.example.com/jira/login.jsp")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", moved)
        server = TestServer(app, host="127.0.0.1")
        async with server:
            client = _client_for(session, server)

            with pytest.raises(ExalateBadRequest) as caught:
                await client.create_connection(SPEC)

        assert caught.value.status == 302
        assert "JIRA_URL" in str(caught.value)


class TestTransport:
    async def test_slow_create_times_out(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """A create slower than create_timeout raises ExalateTimeout and warns it may exist."""
        sim.create_latency = 0.3
        client = _client_for(session, server, create_timeout=0.05)

        with pytest.raises(ExalateTimeout) as caught:
            await client.create_connection(SPEC)

        assert "may still have been made" in str(caught.value)

    async def test_timed_out_create_can_be_found(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """A create that timed out may still have happened: the list shows it."""
        sim.create_latency = 0.3
        client = _client_for(session, server, create_timeout=0.05)
        with pytest.raises(ExalateTimeout):
            await client.create_connection(SPEC)

        [found] = await client.list_connections()

        assert (found.name, found.status) == (SPEC.name, "PENDING")

    async def test_slow_read_times_out(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """A read slower than read_timeout raises ExalateTimeout."""
        sim.read_latency = 0.3
        client = _client_for(session, server, read_timeout=0.05)

        with pytest.raises(ExalateTimeout):
            await client.list_connections()

    async def test_refused_connection_is_unreachable(self, session: aiohttp.ClientSession) -> None:
        """Nothing listening on the port raises ExalateNotSent, a kind of ExalateUnreachable
        that tells a create certainly did not happen."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        client = ExalateClient(session, f"http://127.0.0.1:{port}", BEARER, read_retries=0)

        with pytest.raises(ExalateNotSent) as caught:
            await client.create_connection(SPEC)

        assert isinstance(caught.value, ExalateUnreachable)
        assert f"127.0.0.1:{port}" in str(caught.value)
        assert caught.value.status is None


class TestSecrecy:
    async def test_echoed_token_is_scrubbed(self, sim: Simulator, client: ExalateClient) -> None:
        """A server message that echoes the token reaches neither str, repr nor detail."""
        sim.fail("create", 400, message=f"bad {TOKEN}")
        sim.fail("myself", 401, message=f"bad token {TOKEN}")

        with pytest.raises(ExalateBadRequest) as create:
            await client.create_connection(SPEC)
        with pytest.raises(ExalateAuthError) as myself:
            await client.myself()

        for error in (create.value, myself.value):
            assert error.detail is not None
            assert "[secret]" in error.detail
            for text in (str(error), repr(error), error.detail):
                assert TOKEN not in text

    async def test_no_error_shows_the_token(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """Timeouts, refusals and HTTP errors never carry the token in str or repr."""
        failures: list[ExalateError] = []
        sim.read_latency = 0.3
        slow = _client_for(session, server, read_timeout=0.05)
        with pytest.raises(ExalateTimeout) as timeout:
            await slow.list_projects()
        failures.append(timeout.value)
        sim.read_latency = 0.0
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with pytest.raises(ExalateUnreachable) as refused:
            await ExalateClient(
                session, f"http://127.0.0.1:{port}", BEARER, read_retries=0
            ).myself()
        failures.append(refused.value)
        client = _client_for(session, server)
        for status in (400, 401, 404, 409, 429, 500):
            sim.fail("connections", status)
            with pytest.raises(ExalateError) as caught:
                await client.list_connections()
            failures.append(caught.value)

        for failure in failures:
            assert TOKEN not in str(failure)
            assert TOKEN not in repr(failure)
            assert failure.__cause__ is None

    def test_client_repr_hides_token(self, client: ExalateClient) -> None:
        """The client's repr names the Jira URL but not the token."""
        assert TOKEN not in repr(client)
        assert "127.0.0.1" in repr(client)

    def test_created_connection_repr_hides_code(self) -> None:
        """CreatedConnection parsed from the wire masks invitationCode in repr and str."""
        created = CreatedConnection.model_validate(
            {"id": 154, "name": "a_to_b", "status": "PENDING", "invitationCode": "c0de-xyz"}
        )

        assert "c0de-xyz" not in repr(created)
        assert "c0de-xyz" not in str(created)
        assert created.invitation_code.get_secret_value() == "c0de-xyz"


class TestReadRetries:
    """Reads ride out a passing trouble; the create call is never repeated."""

    async def test_reads_retry_with_growing_jittered_waits(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """Two 503s, then success: the list arrives after two waits, the second longer."""
        sleeps = Sleeps()
        client = _client_for(session, server, read_retries=2, sleep=sleeps)
        sim.fail("connections", 503, times=2)
        assert await client.list_connections() == []
        assert len(sleeps.delays) == 2
        assert 0.5 <= sleeps.delays[0] <= 0.75
        assert 1.0 <= sleeps.delays[1] <= 1.5

    async def test_retry_after_is_honoured(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """A 429 waits exactly what Retry-After asks."""
        sleeps = Sleeps()
        client = _client_for(session, server, read_retries=2, sleep=sleeps)
        sim.fail("projects", 429, retry_after=3)
        assert await client.list_projects()
        assert sleeps.delays == [3.0]

    async def test_long_retry_after_fails_at_once(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """A 429 asking for more than MAX_RETRY_AFTER is not waited out."""
        sleeps = Sleeps()
        client = _client_for(session, server, read_retries=2, sleep=sleeps)
        sim.fail("projects", 429, retry_after=120)
        with pytest.raises(ExalateRateLimited):
            await client.list_projects()
        assert sleeps.delays == []

    async def test_retries_give_up_after_the_last(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """Three failures with two retries raise the last error."""
        client = _client_for(session, server, read_retries=2)
        sim.fail("connections", 500, times=3)
        with pytest.raises(ExalateServerError):
            await client.list_connections()

    async def test_create_is_never_repeated(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """A 503 on the create call is raised at once: one POST, no retry."""
        client = _client_for(session, server, read_retries=2)
        sim.fail("create", 503)
        with pytest.raises(ExalateServerError):
            await client.create_connection(SPEC)
        assert len(sim.create_calls) == 1


class TestMetricLabels:
    """observe() gets the route template: one Prometheus series per kind of call."""

    async def test_project_keys_share_one_label(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """Real, made-up and odd keys, retries included, all report the {key} template."""
        metrics = Metrics()
        client = ExalateClient(
            session,
            str(server.make_url("/")),
            BEARER,
            read_retries=1,
            sleep=Sleeps(),
            observe=metrics.observer("eu"),
        )
        sim.fail("project", 503)

        assert await client.get_project("SUP") is not None
        assert await client.get_project("MADE-UP") is None
        assert await client.get_project("odd key?") is None

        text = metrics.render({}, listeners_running=0)
        count = (
            'exalate_bot_exalate_call_seconds_count{call="GET /rest/api/2/project/{key}",site="eu"}'
        )
        assert f"{count} 4.0" in text
        labelled = [line for line in text.splitlines() if "/rest/api/2/project/" in line]
        assert labelled
        assert all("/rest/api/2/project/{key}" in line for line in labelled)
        assert [r.path for r in sim.requests][-2:] == [
            "/rest/api/2/project/MADE-UP",
            "/rest/api/2/project/odd key?",
        ]

    async def test_fixed_paths_report_themselves(
        self, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """Calls without a variable part report method and path as they are."""
        calls: list[str] = []
        client = ExalateClient(
            session,
            str(server.make_url("/")),
            BEARER,
            observe=lambda call, _: calls.append(call),
        )

        await client.create_connection(SPEC)
        await client.list_connections()
        await client.list_projects()
        await client.myself()
        await client.server_info()

        assert calls == [
            "POST /rest/issuehub/4.0/connections",
            "GET /rest/issuehub/4.0/connections",
            "GET /rest/api/2/project",
            "GET /rest/api/2/myself",
            "GET /rest/api/2/serverInfo",
        ]


def _console_made(sim: Simulator, count: int) -> list[str]:
    """``count`` connections made in the console, ``c1`` … in id order; their names."""
    names = [f"c{n}" for n in range(1, count + 1)]
    for name in names:
        sim.create_in_console(name)
    return names


def _list_queries(sim: Simulator) -> list[str]:
    return [r.query for r in sim.requests if r.path == "/rest/issuehub/4.0/connections"]


class TestPaging:
    """A list whose ``total`` exceeds its ``results`` is one page: the client reads the
    rest where the node serves it, and otherwise says the list is incomplete."""

    @pytest.mark.parametrize("parameter", ["offset", "start"])
    async def test_a_node_that_pages_is_read_whole(
        self, sim: Simulator, client: ExalateClient, parameter: str
    ) -> None:
        """Each further page begins at the last connection read, with either name of
        the offset parameter."""
        names = _console_made(sim, 7)
        sim.set_paging(3, parameter)

        listing = await client.connection_list()

        assert listing.complete
        assert [c.name for c in listing.results] == names
        assert listing.total == 7
        assert _list_queries(sim) == ["", "limit=5&offset=2&start=2", "limit=3&offset=4&start=4"]

    async def test_a_node_that_does_not_page_leaves_the_list_incomplete(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """A node that answers its first page whatever it is asked: seen at the first
        further page, which does not follow on, and not asked again."""
        names = _console_made(sim, 5)
        sim.set_paging(2, None)

        listing = await client.connection_list()

        assert not listing.complete
        assert ([c.name for c in listing.results], listing.total) == (names[:2], 5)
        assert len(_list_queries(sim)) == 2

    async def test_a_list_that_shifts_while_it_is_read_stays_incomplete(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """A connection deleted between two pages shifts the next one: it no longer
        begins at the last one read, so what follows cannot be trusted."""
        _console_made(sim, 5)
        sim.set_paging(2)
        calls: list[str] = []

        def delete_after_the_first_page(call: str, _seconds: float) -> None:
            calls.append(call)
            if len(calls) == 1:
                sim.delete("c1")

        client = ExalateClient(
            session, str(server.make_url("/")), BEARER, observe=delete_after_the_first_page
        )
        listing = await client.connection_list()

        assert not listing.complete
        assert [c.name for c in listing.results] == ["c1", "c2"]

    async def test_a_further_page_that_fails_leaves_the_list_incomplete(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """The first page stands; what could not be read is said to be missing."""
        _console_made(sim, 5)
        sim.set_paging(2)

        def fail_after_the_first_page(_call: str, _seconds: float) -> None:
            if not sim.requests[1:]:
                sim.fail("connections", 500)

        client = ExalateClient(
            session,
            str(server.make_url("/")),
            BEARER,
            read_retries=0,
            observe=fail_after_the_first_page,
        )
        listing = await client.connection_list()

        assert (len(listing.results), listing.total, listing.complete) == (2, 5, False)

    async def test_a_whole_list_is_one_call(self, sim: Simulator, client: ExalateClient) -> None:
        _console_made(sim, 3)
        sim.set_paging(3)

        assert (await client.connection_list()).complete
        assert _list_queries(sim) == [""]


class TestCreateRefusals:
    """How a refused create call is classified, each saying what to fix."""

    @pytest.mark.parametrize("status", [400, 415])
    async def test_400_and_415_to_the_create_call_are_a_call_not_taken(
        self, sim: Simulator, client: ExalateClient, status: int
    ) -> None:
        sim.fail("create", status, message="Unrecognized field")

        with pytest.raises(ExalateCallNotTaken) as caught:
            await client.create_connection(SPEC)

        assert isinstance(caught.value, ExalateBadRequest)
        assert caught.value.status == status
        assert str(caught.value) == (
            "Exalate did not take the connection-creation call as the bot sent it "
            f"(HTTP {status} on POST /rest/issuehub/4.0/connections). "
            "Exalate said: Unrecognized field"
        )

    async def test_a_400_to_a_read_is_a_plain_bad_request(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        sim.fail("connections", 400)

        with pytest.raises(ExalateBadRequest) as caught:
            await client.list_connections()

        assert not isinstance(caught.value, ExalateCallNotTaken)

    async def test_the_simulator_refuses_a_create_not_sent_as_json(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """Its 415 is the one a JAX-RS resource gives, before the body is read."""
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"}
        url = server.make_url("/rest/issuehub/4.0/connections")
        async with session.post(url, data="{}", headers=headers) as response:
            assert response.status == 415
            assert (await response.json())["message"].startswith("Unsupported media type")
        assert sim.create_calls == []

    async def test_a_403_names_the_tokens_variable(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        sim.fail("create", 403)
        client = ExalateClient(
            session, str(server.make_url("/")), BEARER, credentials_from="JIRA_TOKEN_EU"
        )

        with pytest.raises(ExalateAuthError) as caught:
            await client.create_connection(SPEC)

        assert "the Jira user whose personal access token is in JIRA_TOKEN_EU" in str(caught.value)

    async def test_a_403_names_the_basic_auth_user(self, session: aiohttp.ClientSession) -> None:
        sim = Simulator()
        sim.fail("create", 403)
        async with TestServer(sim.app, host="127.0.0.1") as server:
            client = ExalateClient(
                session,
                str(server.make_url("/")),
                BasicAuth("exalate-bot", "secret-password"),
                credentials_from="JIRA_PASSWORD_US",
            )
            with pytest.raises(ExalateAuthError) as caught:
                await client.create_connection(SPEC)

        message = str(caught.value)
        assert "the Jira user exalate-bot (the site's username)" in message
        assert "secret-password" not in message
