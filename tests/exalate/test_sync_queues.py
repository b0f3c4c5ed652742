"""Reading the two sync queues' sizes: ExalateClient.queue_size against the simulator over
loopback, and the simulator's monitoring endpoints and knobs as a black-box tester sees them."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.exalate import (
    BearerToken,
    ExalateAuthError,
    ExalateBadRequest,
    ExalateClient,
    ExalateEndpointMissing,
    ExalateServerError,
    ExalateTimeout,
)
from bot.exalate.models import SyncQueue
from bot.exalate.statuses import SYNC_EVENTS_PATH, SYNC_REQUESTS_PATH
from bot.sandbox.exalate_simulator import RawAnswer, Simulator
from tests.exalate.conftest import Sleeps

TOKEN = "pat-c3luYy1xdWV1ZXMtdGVzdC10b2tlbg"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OUTGOING, INCOMING = SyncQueue.OUTGOING, SyncQueue.INCOMING


@pytest.fixture(name="token")
def _token() -> str:
    return TOKEN


def _client_for(
    session: aiohttp.ClientSession,
    server: TestServer,
    token: str = TOKEN,
    *,
    read_timeout: float = 10.0,
    read_retries: int = 0,
    observe: list[str] | None = None,
) -> ExalateClient:
    return ExalateClient(
        session,
        str(server.make_url("/")),
        BearerToken(token),
        read_timeout=read_timeout,
        read_retries=read_retries,
        sleep=Sleeps(),
        observe=None if observe is None else (lambda call, _: observe.append(call)),
    )


@pytest.fixture(name="client")
def _client(session: aiohttp.ClientSession, server: TestServer) -> ExalateClient:
    return _client_for(session, server)


async def _call(
    session: aiohttp.ClientSession,
    server: TestServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One raw HTTP call to the simulator: its status and decoded JSON body."""
    async with session.request(
        method, server.make_url(path), json=body, headers=AUTH if headers is None else headers
    ) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else None


def _queue_queries(sim: Simulator) -> list[tuple[str, str]]:
    return [(r.path, r.query) for r in sim.requests if "/sync" in r.path]


class TestSizes:
    async def test_both_queues_are_empty_by_default(self, client: ExalateClient) -> None:
        assert await client.queue_size(OUTGOING) == 0
        assert await client.queue_size(INCOMING) == 0

    async def test_each_queue_reads_its_own_size(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """outgoing is syncevents, incoming syncrequests; either is set by enum or name."""
        sim.set_queue(OUTGOING, 7)
        sim.set_queue("incoming", 1_000_000)

        assert await client.queue_size(OUTGOING) == 7
        assert await client.queue_size(INCOMING) == 1_000_000
        assert _queue_queries(sim) == [
            (SYNC_EVENTS_PATH, "limit=0"),
            (SYNC_REQUESTS_PATH, "limit=0"),
        ]

    async def test_the_call_carries_the_credentials_and_asks_for_the_count_only(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        sim.set_queue(OUTGOING, 3)
        await client.queue_size(OUTGOING)

        [request] = sim.requests
        assert (request.method, request.path, request.query) == ("GET", SYNC_EVENTS_PATH, "limit=0")
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/json"

    async def test_the_call_reports_its_path_to_observe(
        self, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        calls: list[str] = []
        client = _client_for(session, server, observe=calls)

        await client.queue_size(OUTGOING)
        await client.queue_size(INCOMING)

        assert calls == [f"GET {SYNC_EVENTS_PATH}", f"GET {SYNC_REQUESTS_PATH}"]

    @pytest.mark.parametrize(
        ("queue", "size"), [("sideways", 1), ("outgoing", -1), ("outgoing", True)]
    )
    def test_the_python_knob_refuses_what_no_node_would_say(
        self, sim: Simulator, queue: str, size: int
    ) -> None:
        with pytest.raises(ValueError, match="queue"):
            sim.set_queue(queue, size)
        assert sim.queues.sizes == {OUTGOING: 0, INCOMING: 0}


class TestMissingEndpoint:
    async def test_a_removed_endpoint_is_endpoint_missing_naming_the_queue(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        """404 on syncevents: the outgoing queue goes unwatched; the other still reads."""
        sim.set_queue(INCOMING, 2)
        sim.remove_endpoint("syncevents")

        with pytest.raises(ExalateEndpointMissing) as caught:
            await client.queue_size(OUTGOING)

        assert caught.value.status == 404
        message = str(caught.value)
        assert message.startswith(
            f"This node has no {SYNC_EVENTS_PATH} endpoint (HTTP 404 on GET {SYNC_EVENTS_PATH});"
            " the outgoing sync queue is not watched."
        )
        assert TOKEN not in message
        assert await client.queue_size(INCOMING) == 2

    async def test_a_restored_endpoint_answers_again(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        sim.set_queue(INCOMING, 4)
        sim.remove_endpoint("syncrequests")
        with pytest.raises(ExalateEndpointMissing, match="the incoming sync queue"):
            await client.queue_size(INCOMING)

        sim.restore_endpoint("syncrequests")

        assert await client.queue_size(INCOMING) == 4

    async def test_the_node_answers_as_jira_does_a_path_nothing_serves(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        sim.remove_endpoint("syncevents")

        status, body = await _call(session, server, "GET", f"{SYNC_EVENTS_PATH}?limit=0")

        assert status == 404
        assert body == {
            "message": f"null for uri: {server.make_url(SYNC_EVENTS_PATH)}?limit=0",
            "status-code": 404,
        }

    async def test_the_endpoints_knob_removes_and_restores(
        self, session: aiohttp.ClientSession, server: TestServer, client: ExalateClient
    ) -> None:
        status, body = await _call(
            session, server, "POST", "/_simulator/endpoints", {"syncevents": False}
        )
        assert (status, body) == (200, {"syncevents": False, "syncrequests": True})
        with pytest.raises(ExalateEndpointMissing):
            await client.queue_size(OUTGOING)

        status, body = await _call(
            session,
            server,
            "POST",
            "/_simulator/endpoints",
            {"syncevents": True, "syncrequests": False},
        )
        assert (status, body) == (200, {"syncevents": True, "syncrequests": False})
        assert await client.queue_size(OUTGOING) == 0
        with pytest.raises(ExalateEndpointMissing):
            await client.queue_size(INCOMING)

    @pytest.mark.parametrize(
        "body", [{"syncevents": "no"}, {"syncevents": 0}, {"connections": False}, [1]]
    )
    async def test_the_endpoints_knob_refuses_what_it_cannot_do(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer, body: Any
    ) -> None:
        status, _ = await _call(session, server, "POST", "/_simulator/endpoints", body)

        assert status == 400
        assert sim.queues.removed == set()

    def test_only_the_queue_endpoints_can_be_removed(self, sim: Simulator) -> None:
        with pytest.raises(ValueError, match="unknown endpoint 'connections'"):
            sim.remove_endpoint("connections")


class TestFaults:
    async def test_a_server_error_is_server_error(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        sim.fail("syncevents", 500)

        with pytest.raises(ExalateServerError) as caught:
            await client.queue_size(OUTGOING)

        assert caught.value.status == 500
        assert await client.queue_size(OUTGOING) == 0  # the fault was used up

    async def test_a_refusal_is_an_auth_error(self, sim: Simulator, client: ExalateClient) -> None:
        sim.fail("syncrequests", 401)

        with pytest.raises(ExalateAuthError) as caught:
            await client.queue_size(INCOMING)

        assert caught.value.status == 401
        assert "JIRA_TOKEN" in str(caught.value)

    async def test_a_passing_trouble_is_retried_as_every_read(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        sim.set_queue(OUTGOING, 5)
        sim.fail("syncevents", 503)
        client = _client_for(session, server, read_retries=1)

        assert await client.queue_size(OUTGOING) == 5
        assert len(_queue_queries(sim)) == 2

    async def test_the_faults_knob_aims_at_a_queue_route(
        self, session: aiohttp.ClientSession, server: TestServer, client: ExalateClient
    ) -> None:
        status, _ = await _call(
            session, server, "POST", "/_simulator/faults", {"route": "syncrequests", "status": 403}
        )
        assert status == 200

        with pytest.raises(ExalateAuthError):
            await client.queue_size(INCOMING)

    async def test_a_slow_answer_times_out_at_the_read_timeout(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        sim.read_latency = 0.3
        client = _client_for(session, server, read_timeout=0.05)

        with pytest.raises(ExalateTimeout, match=r"within 0\.05 s"):
            await client.queue_size(OUTGOING)

    @pytest.mark.parametrize(
        "body",
        [
            '{"limit": 0, "results": []}',
            '{"limit": 0, "total": -1, "results": []}',
            '{"limit": 0, "total": "12", "results": []}',
            '{"limit": 0, "total": 1.5, "results": []}',
            '{"limit": 0, "total": true, "results": []}',
            '{"limit": 0, "total": null, "results": []}',
            "[12]",
            "12",
        ],
    )
    async def test_a_malformed_count_is_an_unexpected_answer(
        self, sim: Simulator, client: ExalateClient, body: str
    ) -> None:
        """A body without a non-negative whole total fails as every malformed answer does,
        without quoting it."""
        sim.answer_raw("syncevents", RawAnswer(body.encode()))

        with pytest.raises(ExalateServerError) as caught:
            await client.queue_size(OUTGOING)

        assert str(caught.value).startswith(
            f"Jira gave an unexpected answer to GET {SYNC_EVENTS_PATH} (not the JSON its API"
        )
        assert body not in str(caught.value)

    async def test_fields_a_later_version_adds_are_ignored(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        sim.answer_raw("syncevents", RawAnswer(b'{"total": 9, "oldestAge": 3600}'))

        assert await client.queue_size(OUTGOING) == 9


class TestAuthenticationFirst:
    async def test_a_wrong_token_is_refused(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        sim.set_queue(OUTGOING, 3)
        client = _client_for(session, server, "not-the-token")

        with pytest.raises(ExalateAuthError) as caught:
            await client.queue_size(OUTGOING)

        assert caught.value.status == 401

    async def test_a_refusal_comes_before_a_removed_endpoint_and_a_fault(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        """Jira checks credentials first: no 404 and no queued fault is spent on a caller
        it does not know."""
        sim.remove_endpoint("syncevents")
        sim.fail("syncrequests", 500)
        stranger = _client_for(session, server, "not-the-token")

        for queue in SyncQueue:
            with pytest.raises(ExalateAuthError):
                await stranger.queue_size(queue)

        with pytest.raises(ExalateServerError):
            await _client_for(session, server).queue_size(INCOMING)

    async def test_no_credentials_are_refused_with_exalates_error_body(
        self, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        status, body = await _call(
            session, server, "GET", f"{SYNC_REQUESTS_PATH}?limit=0", headers={}
        )

        assert status == 401
        assert body == {"message": "Client must be authenticated to access this resource."}


class TestSimulatorEndpoints:
    """The monitoring envelope as the simulator serves it, beyond what the bot asks."""

    async def test_limit_zero_counts_only(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        sim.set_queue(OUTGOING, 20)

        status, body = await _call(session, server, "GET", f"{SYNC_EVENTS_PATH}?limit=0")

        assert (status, body) == (200, {"limit": 0, "total": 20, "results": []})

    @pytest.mark.parametrize(
        ("query", "size", "listed", "limit"),
        [("", 80, 50, 50), ("", 3, 3, 50), ("?limit=2", 80, 2, 2), ("?limit=9", 4, 4, 9)],
    )
    async def test_without_a_zero_limit_events_are_listed(
        self,
        sim: Simulator,
        session: aiohttp.ClientSession,
        server: TestServer,
        query: str,
        size: int,
        listed: int,
        limit: int,
    ) -> None:
        sim.set_queue(INCOMING, size)

        status, body = await _call(session, server, "GET", f"{SYNC_REQUESTS_PATH}{query}")

        assert status == 200
        assert body == {
            "limit": limit,
            "total": size,
            "results": [{"id": i} for i in range(1, listed + 1)],
        }

    @pytest.mark.parametrize("limit", ["-1", "abc", "1.5", ""])
    async def test_a_limit_that_is_no_count_is_a_bad_request(
        self,
        session: aiohttp.ClientSession,
        server: TestServer,
        limit: str,
    ) -> None:
        status, body = await _call(session, server, "GET", f"{SYNC_EVENTS_PATH}?limit={limit}")

        assert status == 400
        assert body == {"message": f"'limit' must be a whole number of entries, not '{limit}'."}

    async def test_a_bad_request_reaches_the_client_as_one(
        self, sim: Simulator, client: ExalateClient
    ) -> None:
        sim.answer_raw("syncevents", RawAnswer(b'{"message": "bad limit"}', status=400))

        with pytest.raises(ExalateBadRequest, match="Exalate said: bad limit"):
            await client.queue_size(OUTGOING)


class TestQueuesKnob:
    async def test_sizes_set_over_http_are_read(
        self, session: aiohttp.ClientSession, server: TestServer, client: ExalateClient
    ) -> None:
        status, body = await _call(session, server, "POST", "/_simulator/queues", {"outgoing": 12})
        assert (status, body) == (200, {"outgoing": 12, "incoming": 0})

        status, body = await _call(session, server, "POST", "/_simulator/queues", {"incoming": 4})
        assert (status, body) == (200, {"outgoing": 12, "incoming": 4})

        assert await client.queue_size(OUTGOING) == 12
        assert await client.queue_size(INCOMING) == 4

    @pytest.mark.parametrize(
        "body",
        [
            {"outgoing": -1},
            {"outgoing": "3"},
            {"outgoing": 1.0},
            {"outgoing": True},
            {"outgoing": None},
            {"sideways": 1},
            {"outgoing": 5, "incoming": -1},
            [5],
        ],
    )
    async def test_what_is_not_a_size_is_refused_and_changes_nothing(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer, body: Any
    ) -> None:
        status, answer = await _call(session, server, "POST", "/_simulator/queues", body)

        assert status == 400
        assert isinstance(answer["message"], str)
        assert sim.queues.sizes == {OUTGOING: 0, INCOMING: 0}


class TestConsoleConnectionKnob:
    async def test_a_connection_made_in_the_console_is_listed_with_its_status(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        client = _client_for(session, server)
        status, body = await _call(
            session,
            server,
            "POST",
            "/_simulator/connections",
            {"name": "By_Hand", "status": "ACTIVE"},
        )
        assert status == 201

        [listed] = await client.list_connections()

        assert (listed.id, listed.name, listed.status) == (body["id"], "By_Hand", "ACTIVE")
        assert sim.create_calls == []  # not made through the API

    async def test_its_status_is_pending_unless_given(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        status, body = await _call(
            session, server, "POST", "/_simulator/connections", {"name": "x"}
        )

        assert status == 201
        assert sim.connections[body["id"]]["status"] == "PENDING"

    async def test_a_name_taken_whatever_its_case_is_a_conflict_in_exalates_words(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer
    ) -> None:
        sim.create_in_console("By_Hand")

        status, body = await _call(
            session, server, "POST", "/_simulator/connections", {"name": "by_hand"}
        )

        assert (status, body) == (409, {"message": "Connection 'by_hand' already exists"})
        assert len(sim.connections) == 1

    @pytest.mark.parametrize(
        "body", [{}, {"name": ""}, {"name": "  "}, {"name": 3}, {"name": "x", "status": ""}]
    )
    async def test_a_knob_without_a_name_or_status_is_refused(
        self, sim: Simulator, session: aiohttp.ClientSession, server: TestServer, body: Any
    ) -> None:
        status, _ = await _call(session, server, "POST", "/_simulator/connections", body)

        assert status == 400
        assert sim.connections == {}
