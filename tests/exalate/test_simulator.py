"""The simulator as a black-box tester sees it: its API and its /_simulator knobs over HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.sandbox.exalate_simulator import Simulator, serve

TOKEN = "sim-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNAUTHENTICATED = "Client must be authenticated to access this resource."
CONNECTIONS = "/rest/issuehub/4.0/connections"
BODY = {
    "connectionType": "PRIVATE",
    "configurationMode": "SCRIPT",
    "localInstanceShortName": "acme",
    "remoteInstanceShortName": "partner",
    "name": "acme_to_partner",
    "description": "",
    "incomingProjectKey": "SUP",
}


class Http:
    """A tiny driver: one call, its status, headers and decoded JSON body."""

    def __init__(self, session: aiohttp.ClientSession, server: TestServer):
        self._session = session
        self._server = server

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        within: float = 2.0,
    ) -> tuple[int, Any, dict[str, str]]:
        async with self._session.request(
            method,
            self._server.make_url(path),
            json=body,
            headers=AUTH if headers is None else headers,
            timeout=aiohttp.ClientTimeout(total=within),
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None, dict(response.headers)

    async def raw(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, Any]:
        """One call with its body undecoded, and its headers as received; a redirect is
        not followed (it points off the machine)."""
        async with self._session.request(
            method, self._server.make_url(path), json=body, headers=AUTH, allow_redirects=False
        ) as response:
            return response.status, await response.read(), response.headers

    async def create(self, **changes: str) -> tuple[int, Any]:
        status, body, _ = await self.call("POST", CONNECTIONS, {**BODY, **changes})
        return status, body


@pytest.fixture(name="token")
def _token() -> str:
    return TOKEN


@pytest.fixture(name="http")
async def _http(server: TestServer) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(session, server)


class TestAuth:
    async def test_missing_token_is_401(self, http: Http) -> None:
        """A call without a bearer token is refused with 401 and Exalate's message body."""
        status, body, _ = await http.call("GET", CONNECTIONS, headers={})

        assert status == 401
        assert "message" in body

    async def test_wrong_token_is_401_in_jira_dialect(self, http: Http) -> None:
        """A wrong token on a Jira core route gets 401 with Jira's errorMessages body."""
        status, body, _ = await http.call(
            "GET", "/rest/api/2/myself", headers={"Authorization": "Bearer nope"}
        )

        assert status == 401
        assert body["errorMessages"]
        assert body["errors"] == {}

    async def test_empty_bearer_is_401(self, http: Http) -> None:
        """'Bearer' with nothing after it is no token."""
        status, _, _ = await http.call(
            "GET", "/rest/api/2/project", headers={"Authorization": "Bearer "}
        )

        assert status == 401

    async def test_unauthorised_create_is_not_recorded(self, sim: Simulator, http: Http) -> None:
        """A create refused for its token creates nothing and is not counted as a create."""
        status, _, _ = await http.call("POST", CONNECTIONS, BODY, headers={})

        assert status == 401
        assert sim.create_calls == []
        assert sim.connections == {}

    async def test_any_token_when_none_configured(self) -> None:
        """Without a configured token, any non-empty bearer token is accepted."""
        server = TestServer(Simulator().app, host="127.0.0.1")
        async with server, aiohttp.ClientSession() as session:
            http = Http(session, server)

            ok, _, _ = await http.call("GET", CONNECTIONS, headers={"Authorization": "Bearer x"})
            refused, _, _ = await http.call("GET", CONNECTIONS, headers={})

        assert (ok, refused) == (200, 401)

    async def test_basic_simulator_accepts_only_its_pair(self) -> None:
        """basic=(user, password) accepts that Basic pair only; a Bearer token or a wrong
        password gets the same 401 body a wrong token gets."""
        server = TestServer(Simulator(basic=("bot", "pw-1")).app, host="127.0.0.1")
        async with server, aiohttp.ClientSession() as session:
            http = Http(session, server)

            ok = await http.call("GET", CONNECTIONS, headers=_basic("bot:pw-1"))
            bearer = await http.call("GET", CONNECTIONS, headers={"Authorization": "Bearer pw-1"})
            wrong = await http.call("GET", CONNECTIONS, headers=_basic("bot:pw-2"))
            jira = await http.call("GET", "/rest/api/2/myself", headers=_basic("bot:pw-2"))

        assert ok[0] == 200
        assert bearer[:2] == wrong[:2] == (401, {"message": UNAUTHENTICATED})
        assert jira[:2] == (401, {"errorMessages": [UNAUTHENTICATED], "errors": {}})

    async def test_token_simulator_refuses_basic(self, http: Http) -> None:
        """With token= set, Basic is refused even when it carries the token."""
        status, body, _ = await http.call("GET", CONNECTIONS, headers=_basic(f"bot:{TOKEN}"))

        assert (status, body) == (401, {"message": UNAUTHENTICATED})

    @pytest.mark.parametrize(
        ("authorization", "expected"),
        [
            ("Basic " + base64.b64encode(b"anyone:anything").decode(), 200),
            ("Basic " + base64.b64encode(b"no-colon").decode(), 401),
            ("Basic " + base64.b64encode(b":no-user").decode(), 401),
            ("Basic " + base64.b64encode(b"no-password:").decode(), 401),
            ("Basic not*base64", 401),
            ("Basic ", 401),
        ],
    )
    async def test_open_simulator_takes_any_well_formed_basic(
        self, authorization: str, expected: int
    ) -> None:
        """Without token or basic, any user:password pair passes; a malformed one does not."""
        server = TestServer(Simulator().app, host="127.0.0.1")
        async with server, aiohttp.ClientSession() as session:
            status, _, _ = await Http(session, server).call(
                "GET", CONNECTIONS, headers={"Authorization": authorization}
            )

        assert status == expected

    @pytest.mark.parametrize(
        "options",
        [
            {"token": "t", "basic": ("u", "p")},
            {"basic": ("", "p")},
            {"basic": ("u:v", "p")},
            {"basic": ("u", "")},
        ],
    )
    def test_ambiguous_or_impossible_credentials_are_refused(self, options: dict[str, Any]) -> None:
        """A site authenticates one way, with a pair that could log in."""
        with pytest.raises(ValueError, match="basic"):
            Simulator(**options)


def _basic(pair: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


class TestCreate:
    async def test_ids_start_at_154_and_increase(self, http: Http) -> None:
        """New connections get ids 154, 155, … and start PENDING."""
        first = await http.create(name="a_to_b")
        second = await http.create(name="a_to_c")

        assert first[0] == second[0] == 201
        assert (first[1]["id"], second[1]["id"]) == (154, 155)
        assert first[1]["status"] == "PENDING"

    async def test_invitation_codes_are_unique(self, http: Http) -> None:
        """Each connection gets its own non-empty invitation code."""
        _, first = await http.create(name="a_to_b")
        _, second = await http.create(name="a_to_c")

        assert first["invitationCode"]
        assert first["invitationCode"] != second["invitationCode"]

    async def test_duplicate_name_is_409(self, http: Http) -> None:
        """A name already taken, in any letter case, is refused with 409."""
        await http.create()

        status, body = await http.create(name="ACME_TO_PARTNER")

        assert status == 409
        assert body == {"message": "Connection 'ACME_TO_PARTNER' already exists"}

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"connectionType": "PUBLIC"}, "connectionType"),
            ({"configurationMode": "VISUAL"}, "configurationMode"),
            ({"incomingProjectKey": "NOPE"}, "NOPE"),
            ({"name": " "}, "name"),
        ],
    )
    async def test_invalid_body_is_400(
        self, sim: Simulator, http: Http, changes: dict[str, str], reason: str
    ) -> None:
        """A wrong type or mode, an unknown project or an empty name is refused with 400."""
        status, body = await http.create(**changes)

        assert status == 400
        assert reason in body["message"]
        assert sim.connections == {}

    async def test_missing_field_is_400(self, http: Http) -> None:
        """A body without a required field is refused with 400 naming the field."""
        body = {k: v for k, v in BODY.items() if k != "remoteInstanceShortName"}

        status, answer, _ = await http.call("POST", CONNECTIONS, body)

        assert status == 400
        assert "remoteInstanceShortName" in answer["message"]

    async def test_list_never_shows_invitation_code(self, http: Http) -> None:
        """GET /connections lists id, name and status but never the invitation code."""
        _, created = await http.create()

        status, listing, _ = await http.call("GET", CONNECTIONS)

        assert status == 200
        assert listing["total"] == 1
        assert listing["results"] == [
            {
                "id": 154,
                "name": "acme_to_partner",
                "status": "PENDING",
                "communication": {"remoteUrl": None},
            }
        ]
        assert created["invitationCode"] not in json.dumps(listing)


class TestFaultKnob:
    async def test_fault_answers_status_times_then_recovers(self, http: Http) -> None:
        """A fault set over HTTP answers its status the given number of times, then stops."""
        await http.call(
            "POST", "/_simulator/faults", {"route": "connections", "status": 503, "times": 2}
        )

        statuses = [(await http.call("GET", CONNECTIONS))[0] for _ in range(3)]

        assert statuses == [503, 503, 200]

    async def test_fault_sets_retry_after(self, http: Http) -> None:
        """A 429 fault with retry_after carries a Retry-After header."""
        knob = {"route": "projects", "status": 429, "retry_after": 3, "message": "Slow down"}
        await http.call("POST", "/_simulator/faults", knob)

        status, body, headers = await http.call("GET", "/rest/api/2/project")

        assert status == 429
        assert headers["Retry-After"] == "3"
        assert body == {"errorMessages": ["Slow down"], "errors": {}}

    async def test_faulted_create_creates_nothing_but_is_recorded(
        self, sim: Simulator, http: Http
    ) -> None:
        """A create answered by a fault leaves no connection, yet counts as a call received."""
        await http.call("POST", "/_simulator/faults", {"route": "create", "status": 500})

        status, body = await http.create()

        assert status == 500
        assert body == {"message": "Simulated failure"}
        assert sim.connections == {}
        assert len(sim.create_calls) == 1

    async def test_faults_queue_in_order(self, sim: Simulator, http: Http) -> None:
        """Faults set one after another are answered in that order."""
        sim.fail("myself", 503)
        sim.fail("myself", 429)

        statuses = [(await http.call("GET", "/rest/api/2/myself"))[0] for _ in range(3)]

        assert statuses == [503, 429, 200]

    @pytest.mark.parametrize(
        "knob",
        [
            {"route": "nowhere", "status": 500},
            {"route": 7, "status": 500},
            {"route": "create", "status": 99},
            {"route": "create", "status": 500, "times": 0},
            {"route": "create", "status": "500"},
        ],
    )
    async def test_bad_fault_is_400(self, sim: Simulator, http: Http, knob: dict[str, Any]) -> None:
        """A fault with an unknown route, a bad status or bad times is refused with 400."""
        status, body, _ = await http.call("POST", "/_simulator/faults", knob)

        assert status == 400
        assert body["message"]
        assert (await http.create())[0] == 201

    def test_fail_rejects_unknown_route(self, sim: Simulator) -> None:
        """fail() refuses a route the simulator does not serve."""
        with pytest.raises(ValueError, match="unknown route"):
            sim.fail("nowhere", 500)  # type: ignore[arg-type]


class TestRawAnswerKnob:
    async def test_a_raw_answer_is_sent_as_it_is_then_the_route_recovers(self, http: Http) -> None:
        knob = {
            "route": "connections",
            "body": "<html>Log in</html>",
            "status": 302,
            "content_type": "text/html",
            "headers": {"Location": "https://sso.example.test/login"},
            "times": 2,
        }
        assert (await http.call("POST", "/_simulator/answers", knob))[0] == 200

        answers = [await http.raw("GET", CONNECTIONS) for _ in range(3)]

        for status, body, headers in answers[:2]:
            assert (status, body) == (302, b"<html>Log in</html>")
            assert headers["Location"] == "https://sso.example.test/login"
            assert headers["Content-Type"].startswith("text/html")
        assert answers[2][0] == 200

    @pytest.mark.parametrize("chunked", [False, True])
    async def test_a_repeated_body_is_sent_whole_declared_or_chunked(
        self, http: Http, chunked: bool
    ) -> None:
        knob = {"route": "projects", "body": "[", "repeat": 200_000, "chunked": chunked}
        await http.call("POST", "/_simulator/answers", knob)

        status, body, headers = await http.raw("GET", "/rest/api/2/project")

        assert (status, body) == (200, b"[" * 200_000)
        assert ("Content-Length" in headers) is not chunked

    async def test_a_2xx_raw_answer_to_create_still_creates(
        self, sim: Simulator, http: Http
    ) -> None:
        """The node did its work; only its answer is hostile."""
        await http.call("POST", "/_simulator/answers", {"route": "create", "body": "{"})

        status, body, _ = await http.raw("POST", CONNECTIONS, BODY)

        assert (status, body) == (200, b"{")
        assert sim.named("acme_to_partner")["status"] == "PENDING"

    async def test_another_raw_answer_to_create_creates_nothing(
        self, sim: Simulator, http: Http
    ) -> None:
        knob = {"route": "create", "body": "<html>", "status": 302}
        await http.call("POST", "/_simulator/answers", knob)

        assert (await http.raw("POST", CONNECTIONS, BODY))[0] == 302
        assert sim.connections == {}

    async def test_raw_answers_queue_with_faults(self, sim: Simulator, http: Http) -> None:
        sim.fail("myself", 503)
        await http.call("POST", "/_simulator/answers", {"route": "myself", "body": "[]"})

        answers = [await http.raw("GET", "/rest/api/2/myself") for _ in range(3)]

        assert [(status, body == b"[]") for status, body, _ in answers] == [
            (503, False),
            (200, True),
            (200, False),
        ]

    @pytest.mark.parametrize(
        "knob",
        [
            {"route": "nowhere", "body": ""},
            {"route": "create"},
            {"route": "create", "body": 7},
            {"route": "create", "body": "x", "repeat": 0},
            {"route": "create", "body": "x", "repeat": 2**40},
            {"route": "create", "body": "x", "status": 600},
            {"route": "create", "body": "x", "content_type": None},
            {"route": "create", "body": "x", "headers": {"X": 1}},
            {"route": "create", "body": "x", "chunked": "yes"},
            {"route": "create", "body": "x", "times": 0},
        ],
    )
    async def test_a_bad_raw_answer_knob_is_400(self, http: Http, knob: dict[str, Any]) -> None:
        status, body, _ = await http.call("POST", "/_simulator/answers", knob)

        assert status == 400
        assert body["message"]
        assert (await http.create())[0] == 201


class TestCodeKnob:
    async def test_the_next_connection_gets_the_issued_code(
        self, sim: Simulator, http: Http
    ) -> None:
        await http.call("POST", "/_simulator/codes", {"code": "<!channel> " + "A" * 5000})

        first = (await http.create())[1]
        second = (await http.create(name="acme_to_other"))[1]

        assert first["invitationCode"] == "<!channel> " + "A" * 5000
        assert second["invitationCode"] != first["invitationCode"]  # one use, then its own

    @pytest.mark.parametrize("knob", [{}, {"code": ""}, {"code": 7}])
    async def test_a_bad_code_knob_is_400(self, http: Http, knob: dict[str, Any]) -> None:
        assert (await http.call("POST", "/_simulator/codes", knob))[0] == 400


class TestOtherKnobs:
    async def test_latency_knob_delays_reads(self, sim: Simulator, http: Http) -> None:
        """Latency set over HTTP makes reads slower than a short client timeout."""
        status, body, _ = await http.call("POST", "/_simulator/latency", {"read": 0.3})

        assert (status, body) == (200, {"create": 0.0, "read": 0.3})
        with pytest.raises(TimeoutError):
            await http.call("GET", CONNECTIONS, within=0.05)

    async def test_latency_knob_refuses_negative(self, http: Http) -> None:
        """A negative latency is refused with 400."""
        status, _, _ = await http.call("POST", "/_simulator/latency", {"create": -1})

        assert status == 400

    async def test_accept_turns_connection_active(self, http: Http) -> None:
        """Accepting over HTTP turns the connection ACTIVE in the connection list."""
        await http.create()

        status, body, _ = await http.call("POST", "/_simulator/connections/acme_to_partner/accept")
        _, listing, _ = await http.call("GET", CONNECTIONS)

        assert status == 200
        assert "invitationCode" not in body
        assert listing["results"][0]["status"] == "ACTIVE"

    async def test_status_knob_sets_any_status(self, http: Http) -> None:
        """The status knob sets an arbitrary status string."""
        await http.create()

        await http.call(
            "POST", "/_simulator/connections/acme_to_partner/status", {"status": "DEACTIVATED"}
        )
        _, listing, _ = await http.call("GET", CONNECTIONS)

        assert listing["results"][0]["status"] == "DEACTIVATED"

    async def test_delete_knob_removes_connection(self, http: Http) -> None:
        """Deleting over HTTP removes the connection from the list."""
        await http.create()

        status, _, _ = await http.call("DELETE", "/_simulator/connections/acme_to_partner")
        _, listing, _ = await http.call("GET", CONNECTIONS)

        assert status == 200
        assert listing == {"total": 0, "results": []}

    async def test_unknown_connection_is_404(self, http: Http) -> None:
        """Steering a connection that does not exist answers 404."""
        status, body, _ = await http.call("POST", "/_simulator/connections/ghost/accept")

        assert status == 404
        assert "ghost" in body["message"]

    async def test_projects_knob_sets_count(self, http: Http) -> None:
        """The projects knob replaces the projects with n generated ones."""
        await http.call("POST", "/_simulator/projects", {"count": 120})

        _, projects, _ = await http.call("GET", "/rest/api/2/project")

        assert len(projects) == 120
        assert projects[0] == {
            "id": "10000",
            "key": "P0001",
            "name": "Project 0001",
            "projectTypeKey": "software",
        }

    async def test_calls_knob_lists_create_bodies(self, http: Http) -> None:
        """GET /_simulator/calls returns every create body in order, without codes."""
        await http.create(name="a_to_b")
        await http.create(name="a_to_b")

        status, calls, _ = await http.call("GET", "/_simulator/calls")

        assert status == 200
        assert [c["name"] for c in calls["create"]] == ["a_to_b", "a_to_b"]
        assert "invitationCode" not in json.dumps(calls)

    async def test_knobs_need_no_token(self, http: Http) -> None:
        """The /_simulator controls answer without a bearer token."""
        status, _, _ = await http.call("GET", "/_simulator/calls", headers={})

        assert status == 200


class TestPaging:
    """The list by page: a node that pages and one that does not, set over HTTP."""

    @staticmethod
    async def _five(http: Http, knob: dict[str, Any]) -> None:
        for n in range(1, 6):
            await http.create(name=f"c{n}")
        status, body, _ = await http.call("POST", "/_simulator/paging", knob)
        assert status == 200, body

    @staticmethod
    async def _names(http: Http, query: str = "") -> tuple[int, list[str], Any]:
        status, body, _ = await http.call("GET", f"{CONNECTIONS}{query}")
        assert status == 200, body
        return body["total"], [c["name"] for c in body["results"]], body.get("limit")

    async def test_a_longer_list_answers_its_first_page_and_serves_the_rest(
        self, http: Http
    ) -> None:
        await self._five(http, {"page_size": 2})

        assert await self._names(http) == (5, ["c1", "c2"], None)
        assert await self._names(http, "?offset=2") == (5, ["c3", "c4"], None)
        assert await self._names(http, "?limit=1&offset=4") == (5, ["c5"], 1)
        assert await self._names(http, "?limit=9&offset=3") == (5, ["c4", "c5"], 9)
        assert await self._names(http, "?offset=9") == (5, [], None)

    async def test_limit_zero_counts_only(self, http: Http) -> None:
        """As Exalate's ``syncevents?limit=0`` does."""
        await self._five(http, {"page_size": None})

        assert await self._names(http, "?limit=0") == (5, [], 0)

    async def test_the_offset_may_be_called_start(self, http: Http) -> None:
        await self._five(http, {"page_size": 2, "parameter": "start"})

        assert await self._names(http, "?start=2&offset=0") == (5, ["c3", "c4"], None)

    async def test_a_node_that_does_not_page_always_answers_its_first_page(
        self, http: Http
    ) -> None:
        await self._five(http, {"page_size": 2, "parameter": None})

        assert await self._names(http, "?limit=5&offset=2&start=2") == (5, ["c1", "c2"], None)
        assert await self._names(http, "?offset=nonsense") == (5, ["c1", "c2"], None)

    @pytest.mark.parametrize("query", ["?offset=-1", "?limit=two", "?offset=", "?limit=²"])
    async def test_a_paging_value_that_is_no_count_is_400(self, http: Http, query: str) -> None:
        await self._five(http, {"page_size": 2})

        status, body, _ = await http.call("GET", f"{CONNECTIONS}{query}")

        assert status == 400
        assert "whole number" in body["message"]

    @pytest.mark.parametrize(
        "knob",
        [{"page_size": 0}, {"page_size": "2"}, {"page_size": 2, "parameter": "page"}],
    )
    async def test_a_bad_paging_knob_is_400(self, http: Http, knob: dict[str, Any]) -> None:
        status, body, _ = await http.call("POST", "/_simulator/paging", knob)

        assert status == 400
        assert body["message"]


class TestMediaType:
    async def test_a_create_not_declared_json_is_415_and_not_recorded(
        self, sim: Simulator, http: Http
    ) -> None:
        status, body, _ = await http.call(
            "POST", CONNECTIONS, headers={**AUTH, "Content-Type": "application/xml"}
        )

        assert status == 415
        assert body == {"message": "Unsupported media type 'application/xml'."}
        assert sim.create_calls == []


class TestServe:
    async def test_serve_on_free_port(self) -> None:
        """serve() listens on the given host; port 0 picks a free port read from addresses."""
        runner = await serve(Simulator(token=TOKEN), "127.0.0.1", 0)
        try:
            host, port = runner.addresses[0][:2]
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://{host}:{port}{CONNECTIONS}", headers=AUTH) as response,
            ):
                assert response.status == 200
        finally:
            await runner.cleanup()
