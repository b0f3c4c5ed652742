"""A stand-in for Exalate on Jira that speaks the same wire contract as the real thing.

Tests start it on a loopback port (``aiohttp.test_utils.TestServer(sim.app)``) and drive
the real ``ExalateClient`` against it; ``exalate-bot simulator --port N`` serves it so a
person, or a black-box tester, can run the whole bot without a Jira. Nothing happens at
import time and nothing is shared between instances.

Steer it from Python (``fail``, ``answer_raw``, ``issue_code``, ``accept``,
``set_status``, ``delete``, ``create_in_console``, ``set_project_count``, ``set_paging``,
``set_queue``, ``remove_endpoint``, ``restore_endpoint``, the ``*_latency`` attributes) or
over HTTP, with JSON bodies::

    POST   /_simulator/faults         {"route", "status", "times"?, "message"?, "retry_after"?}
    POST   /_simulator/answers        {"route", "body", "repeat"?, "status"?, "content_type"?,
                                       "headers"?, "chunked"?, "times"?}
    POST   /_simulator/codes          {"code"}
    POST   /_simulator/latency        {"create"?: seconds, "read"?: seconds}
    POST   /_simulator/paging         {"page_size": n|null, "parameter"?: "offset"|"start"|null}
    POST   /_simulator/queues         {"outgoing"?: n, "incoming"?: n}
    POST   /_simulator/endpoints      {"syncevents"?: bool, "syncrequests"?: bool}
    POST   /_simulator/connections    {"name", "status"?}  -> {"id"}, as made in the console
    POST   /_simulator/connections/{name}/accept
    POST   /_simulator/connections/{name}/status     {"status"}
    DELETE /_simulator/connections/{name}
    POST   /_simulator/projects       {"count": n}
    GET    /_simulator/calls          -> {"create": [every POST body, in order]}

Authentication is checked first on every API route, as Jira does, and a refusal is 401
with the route's usual error body. ``Simulator()`` accepts any non-empty Bearer token and
any well-formed Basic pair (``user:password``, both non-empty); ``Simulator(token="t")``
only ``Bearer t``; ``Simulator(basic=("user", "password"))`` only ``Basic`` with
base64(``user:password``), UTF-8. A simulator set for one scheme refuses the other, so a
test can prove which one the client sent. A create whose body is not declared JSON is
refused with 415 before it is read, as a JAX-RS resource refuses it.

The connection list answers ``{"total", "results"}``. With a page size set, a longer list
answers its first page, ``total`` above ``results``; a node that pages then serves the
page asked for with ``limit`` and an offset (``offset`` or ``start``, as set, an entry
count from 0; ``limit=0`` counts only, as Exalate's ``syncevents`` does), and a node that
does not (``parameter=None``) ignores them and always answers its first page. No public
source names the parameters a real node takes: both kinds are here so the bot is tried
against each.

The sync queues' monitoring calls (``syncevents``: outgoing, ``syncrequests``: incoming;
both empty until set) answer ``{"limit", "total", "results"}``: ``limit=0`` counts only, as
the bot asks; without it, or with more, up to ``limit`` (50 by default) synthetic events
are listed. A removed endpoint, credentials checked first, answers 404 as Jira does a path
nothing serves (``bot.sandbox.simulator_queues``).

The ``/_simulator`` routes need no credentials: they are the test's controls, not
Jira's API. Latency is a real ``asyncio.sleep`` in the handler, taken after the answer is
settled: a create the client timed out on still exists, as it can on a real Jira. A
fault, by contrast, changes nothing.

A raw answer is what a broken node, or a proxy or login page in front of it, may send:
any bytes (``body`` ``repeat`` times: a huge answer costs the knob little), any status
and headers (a 302 with a ``Location``), with a declared length or chunked without one.
It queues with the faults. A 2xx raw answer to a create still creates the connection:
the node did its work and only its answer is hostile; any other changes nothing. An
issued code is the invitation code of the next connection created through the API
(Exalate's codes are opaque; a test gives a long or a hostile one).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict, CIMultiDictProxy

from bot.exalate.models import SyncQueue
from bot.sandbox.simulator_auth import AcceptedCredentials
from bot.sandbox.simulator_knobs import RawAnswer, knob_routes
from bot.sandbox.simulator_queues import QUEUE_ROUTES, QueueRoute, SyncQueues, missing_endpoint

__all__ = ["DEFAULT_PROJECTS", "RawAnswer", "RecordedRequest", "Route", "Simulator", "serve"]

Route = Literal["create", "connections", "projects", "project", "myself", "serverInfo", QueueRoute]
"""The calls a fault can be aimed at; ``create`` is the POST, ``connections`` the GET, and
the queue routes (``syncevents``, ``syncrequests``) the monitoring calls."""

ROUTES: frozenset[str] = frozenset(get_args(Route))
_EXALATE_ROUTES: frozenset[str] = frozenset({"create", "connections", *QUEUE_ROUTES})
FIRST_CONNECTION_ID = 154
PAGE_PARAMETERS: frozenset[str | None] = frozenset({"offset", "start", None})

DEFAULT_PROJECTS: tuple[tuple[str, str], ...] = (
    ("SUP", "Support"),
    ("DEV", "Development"),
    ("OPS", "Operations"),
    ("HR", "Human Resources"),
    ("FIN", "Finance"),
)

_REQUIRED = (
    "connectionType",
    "configurationMode",
    "localInstanceShortName",
    "remoteInstanceShortName",
    "name",
    "description",
    "incomingProjectKey",
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One call to the simulated Jira API, as received (for asserting on headers)."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    query: str = ""
    """The query string, as sent."""


@dataclass(slots=True)
class _Fault:
    status: int
    message: str
    retry_after: int | None
    remaining: int
    raw: RawAnswer | None = None


class Simulator:
    """Exalate on Jira in memory: projects, connections, scripted faults and latency.

    ``token`` and ``basic`` say which credentials it accepts (see the module docstring);
    at most one may be given, as a site authenticates one way.
    ``projects`` is ``(key, name)`` pairs; by default a handful like ``("SUP", "Support")``.

    What tests read back: ``create_calls`` (every create body received with valid
    credentials, in order, faulted ones included), ``connections`` (id -> ``{"id",
    "name", "status", "invitationCode"}``), ``queues`` (each sync queue's size, the
    endpoints removed) and ``requests`` (method, path, headers and query string of every
    API call).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        projects: Iterable[tuple[str, str]] | None = None,
    ):
        self.credentials = AcceptedCredentials(token, basic)
        self.token = token
        self.basic = basic
        self.projects: list[tuple[str, str]] = list(
            DEFAULT_PROJECTS if projects is None else projects
        )
        self.create_latency: float = 0.0
        self.read_latency: float = 0.0
        self.page_size: int | None = None
        """The most connections one answer lists; None: the whole list."""
        self.page_parameter: str | None = "offset"
        """The offset parameter it takes with ``limit``; None: it ignores paging."""
        self.create_calls: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self.connections: dict[int, dict[str, Any]] = {}
        self.queues = SyncQueues()
        self._next_id = FIRST_CONNECTION_ID
        self._issued_codes: deque[str] = deque()
        self._faults: dict[str, deque[_Fault]] = {}
        self._connection_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._creates_answer = asyncio.Event()
        self._creates_answer.set()
        self.app = self._build_app()

    # --- steering from Python -------------------------------------------------------------

    def set_project_count(self, n: int) -> None:
        """Replace the projects with ``n`` generated ones, ``P0001`` … (for paging tests)."""
        if n < 0:
            raise ValueError("project count must not be negative")
        self.projects = [(f"P{i:04d}", f"Project {i:04d}") for i in range(1, n + 1)]

    def set_paging(self, page_size: int | None, parameter: str | None = "offset") -> None:
        """List at most ``page_size`` connections an answer, serving further pages with
        ``limit`` and ``parameter`` (``offset`` or ``start``), or with None never."""
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be at least 1")
        if parameter not in PAGE_PARAMETERS:
            raise ValueError(f"parameter must be one of {sorted(map(str, PAGE_PARAMETERS))}")
        self.page_size, self.page_parameter = page_size, parameter

    def set_queue(self, queue: SyncQueue | str, size: int) -> None:
        """How many events wait in ``queue`` (``outgoing`` or ``incoming``)."""
        self.queues.set_size(queue, size)

    def remove_endpoint(self, endpoint: str) -> None:
        """The node lacks ``endpoint`` (``syncevents`` or ``syncrequests``) until restored."""
        self.queues.remove(endpoint)

    def restore_endpoint(self, endpoint: str) -> None:
        self.queues.restore(endpoint)

    def fail(
        self,
        route: Route,
        status: int,
        *,
        times: int = 1,
        message: str = "Simulated failure",
        retry_after: int | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``route`` answer ``status`` with ``message``.

        Faults queue up per route, so ``fail(r, 503)`` then ``fail(r, 429)`` answers 503
        first. The body is Exalate's ``{"message"}`` on Exalate routes and Jira's
        ``{"errorMessages": [...], "errors": {}}`` on ``/rest/api/2`` routes.
        """
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected one of {sorted(ROUTES)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = _Fault(status, message, retry_after, times)
        self._faults.setdefault(route, deque()).append(fault)

    def answer_raw(self, route: Route, answer: RawAnswer, *, times: int = 1) -> None:
        """Make the next ``times`` calls to ``route`` answer ``answer`` as it is; queued
        with the faults. A 2xx one to ``create`` still creates the connection."""
        self.fail(route, answer.status, times=times)
        self._faults[route][-1].raw = answer

    def issue_code(self, code: str) -> None:
        """The invitation code of the next connection created through the API (codes
        issued earlier go first)."""
        self._issued_codes.append(code)

    def create_in_console(
        self, name: str, *, status: str = "PENDING", code: str = "console-made-code"
    ) -> int:
        """A connection made in the Exalate console, by a person, not through the API
        (no create call is recorded); returns its id."""
        connection_id, self._next_id = self._next_id, self._next_id + 1
        self.connections[connection_id] = {
            "id": connection_id,
            "name": name,
            "status": status,
            "invitationCode": code,
        }
        self._wake_connection_waiters()
        return connection_id

    def hold_creates(self) -> None:
        """Create connections but keep every answer back until ``release_creates``: the
        moment a bot may die with its initiations in flight."""
        self._creates_answer.clear()

    def release_creates(self) -> None:
        self._creates_answer.set()

    async def holds(self, count: int) -> None:
        """Return once at least ``count`` connections exist (for tests that must act
        while a create's answer is still on its way)."""
        if len(self.connections) >= count:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._connection_waiters.append((count, waiter))
        await waiter

    def _wake_connection_waiters(self) -> None:
        waiting = []
        for count, waiter in self._connection_waiters:
            if len(self.connections) >= count and not waiter.done():
                waiter.set_result(None)
            elif not waiter.done():
                waiting.append((count, waiter))
        self._connection_waiters = waiting

    def accept(self, name: str) -> None:
        """The partner accepted the invitation: the connection turns ``ACTIVE``."""
        self.set_status(name, "ACTIVE")

    def set_status(self, name: str, status: str) -> None:
        """Set a connection's status (e.g. ``DEACTIVATED``); raise ``KeyError`` if unknown."""
        self.named(name)["status"] = status

    def delete(self, name: str) -> None:
        """Remove a connection, as an admin can in the Exalate console."""
        del self.connections[self.named(name)["id"]]

    def named(self, name: str) -> dict[str, Any]:
        wanted = name.casefold()
        for connection in self.connections.values():
            if connection["name"].casefold() == wanted:
                return connection
        raise KeyError(name)

    # --- the HTTP application ---------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        api = "/rest/issuehub/4.0"
        app.router.add_get(f"{api}/connections", self._list_connections)
        app.router.add_post(f"{api}/connections", self._create_connection)
        app.router.add_get("/rest/api/2/project", self._list_projects)
        app.router.add_get("/rest/api/2/project/{key}", self._get_project)
        app.router.add_get("/rest/api/2/myself", self._myself)
        app.router.add_get("/rest/api/2/serverInfo", self._server_info)
        app.router.add_get(f"{api}/{{queue:{'|'.join(QUEUE_ROUTES)}}}", self._sync_queue)
        app.router.add_routes(knob_routes(self))
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/_simulator/"):
            headers = CIMultiDictProxy(CIMultiDict(request.headers))
            self.requests.append(
                RecordedRequest(request.method, request.path, headers, request.query_string)
            )
        return await handler(request)

    def _unauthorised(self, request: web.Request, route: Route) -> web.Response | None:
        """401 unless the request carries acceptable credentials, as Jira checks first."""
        if self.credentials.accept(request.headers.get("Authorization", "")):
            return None
        return _error(route, 401, "Client must be authenticated to access this resource.")

    async def _answer(self, route: Route, build: Callable[[], web.Response]) -> web.Response:
        """Take the next queued fault or build the real answer, then wait out the latency.

        The answer, and so any change it makes, is settled *before* the wait: a create the
        client gave up on still exists, which is what the bot must reconcile by name.
        """
        fault = self._take_fault(route)
        answer = build() if fault is None else _faulted(route, fault, build)
        await asyncio.sleep(self.create_latency if route == "create" else self.read_latency)
        if route == "create":
            await self._creates_answer.wait()
        return answer

    def _take_fault(self, route: Route) -> _Fault | None:
        """The route's oldest queued fault, counting one use of it."""
        queue = self._faults.get(route)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining == 0:
            queue.popleft()
        return fault

    async def _list_connections(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request, "connections")) is not None:
            return refused
        return await self._answer("connections", lambda: self._connection_list(request.query))

    def _connection_list(self, query: Mapping[str, str]) -> web.Response:
        """One page of the list, ``total`` counting them all; 400 for a paging
        parameter it takes whose value is not a count."""
        results = [
            {
                "id": c["id"],
                "name": c["name"],
                "status": c["status"],
                "communication": {"remoteUrl": None},
            }
            for c in sorted(self.connections.values(), key=lambda c: c["id"])
        ]
        if self.page_parameter is None:
            query = {}  # a node that does not page: every answer is its first page
        try:
            limit = _count(query, "limit")
            offset = _count(query, self.page_parameter or "offset") or 0
        except ValueError as error:
            return _error("connections", 400, str(error))
        size = min(n for n in (limit, self.page_size, len(results)) if n is not None)
        body: dict[str, Any] = {"total": len(results), "results": results[offset:][:size]}
        if limit is not None:
            body["limit"] = limit
        return web.json_response(body)

    async def _sync_queue(self, request: web.Request) -> web.Response:
        route = cast("QueueRoute", request.match_info["queue"])
        if (refused := self._unauthorised(request, route)) is not None:
            return refused
        return await self._answer(route, lambda: self._queue_page(route, request))

    def _queue_page(self, route: QueueRoute, request: web.Request) -> web.Response:
        """The queue's count and first events; 400 for a ``limit`` that is no count."""
        if not self.queues.serves(route):
            return missing_endpoint(str(request.url))
        try:
            limit = _count(request.query, "limit")
        except ValueError as error:
            return _error(route, 400, str(error))
        return web.json_response(self.queues.page(route, limit))

    async def _create_connection(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request, "create")) is not None:
            return refused
        if request.content_type != "application/json":
            return _error("create", 415, f"Unsupported media type '{request.content_type}'.")
        text = await request.text()
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = None
        self.create_calls.append(body if isinstance(body, dict) else {"_unparsed": text})
        return await self._answer("create", lambda: self._create(body))

    def _create(self, body: Any) -> web.Response:
        """Validate like Exalate would (400, then 409), then store a PENDING connection."""
        if problem := self._invalid(body):
            return _error("create", 400, problem)
        name: str = body["name"]
        if any(c["name"].casefold() == name.casefold() for c in self.connections.values()):
            return _error("create", 409, f"Connection '{name}' already exists")
        connection_id, self._next_id = self._next_id, self._next_id + 1
        connection = {
            "id": connection_id,
            "name": name,
            "status": "PENDING",
            "invitationCode": (
                self._issued_codes.popleft() if self._issued_codes else _invitation_code(body)
            ),
        }
        self.connections[connection_id] = connection
        self._wake_connection_waiters()
        return web.json_response(connection, status=201)

    def _invalid(self, body: Any) -> str | None:
        """Why a create body would be refused with 400, or ``None`` if it is acceptable."""
        if not isinstance(body, dict):
            return "The request body must be a JSON object."
        missing = [key for key in _REQUIRED if not isinstance(body.get(key), str)]
        if missing:
            return f"Missing or non-text fields: {', '.join(missing)}."
        empty = [key for key in _REQUIRED if key != "description" and not body[key].strip()]
        if empty:
            return f"Empty fields: {', '.join(empty)}."
        if body["connectionType"] != "PRIVATE":
            return f"Unsupported connectionType '{body['connectionType']}'."
        if body["configurationMode"] != "SCRIPT":
            return f"Unsupported configurationMode '{body['configurationMode']}'."
        if body["incomingProjectKey"] not in {key for key, _ in self.projects}:
            return f"Project '{body['incomingProjectKey']}' does not exist."
        return None

    async def _list_projects(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request, "projects")) is not None:
            return refused
        return await self._answer("projects", self._project_list)

    async def _get_project(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request, "project")) is not None:
            return refused
        key = request.match_info["key"]
        return await self._answer("project", lambda: self._one_project(key))

    def _one_project(self, key: str) -> web.Response:
        for i, (known, name) in enumerate(self.projects):
            if known == key:
                body = {
                    "id": str(10000 + i),
                    "key": key,
                    "name": name,
                    "projectTypeKey": "software",
                }
                return web.json_response(body)
        return _error("project", 404, f"No project could be found with key '{key}'.")

    def _project_list(self) -> web.Response:
        return web.json_response(
            [
                {"id": str(10000 + i), "key": key, "name": name, "projectTypeKey": "software"}
                for i, (key, name) in enumerate(self.projects)
            ]
        )

    async def _myself(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request, "myself")) is not None:
            return refused
        return await self._answer(
            "myself",
            lambda: web.json_response(
                {
                    "name": "exalate-bot",
                    "key": "JIRAUSER10100",
                    "displayName": "Exalate Bot",
                    "active": True,
                }
            ),
        )

    async def _server_info(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request, "serverInfo")) is not None:
            return refused
        return await self._answer(
            "serverInfo",
            lambda: web.json_response(
                {
                    "baseUrl": str(request.url.origin()),
                    "version": "9.12.15",
                    "versionNumbers": [9, 12, 15],
                    "deploymentType": "DataCenter",
                    "serverTitle": "Simulated Jira",
                }
            ),
        )


async def serve(
    simulator: Simulator, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = True
) -> web.AppRunner:
    """Serve ``simulator`` on ``host:port`` until the caller awaits ``runner.cleanup()``.

    ``port=0`` picks a free port; read it back from ``runner.addresses[0][1]``. Inside
    the bot (``--simulated-jira``) the access log is off: every poll would print a line.
    """
    if access_log:
        runner = web.AppRunner(simulator.app)
    else:
        runner = web.AppRunner(simulator.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def _error(
    route: Route, status: int, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    """An error body in the dialect of the route's owner: Exalate's or Jira core's."""
    body: dict[str, Any] = (
        {"message": message}
        if route in _EXALATE_ROUTES
        else {"errorMessages": [message], "errors": {}}
    )
    return web.json_response(body, status=status, headers=headers)


def _faulted(route: Route, fault: _Fault, build: Callable[[], web.Response]) -> web.Response:
    """A fault's answer: a raw one as it is, else an error body in the route's dialect.
    A 2xx raw answer to a create is built too: the node did its work, only its answer
    is hostile."""
    if fault.raw is None:
        retry = fault.retry_after
        headers = {"Retry-After": str(retry)} if retry is not None else {}
        return _error(route, fault.status, fault.message, headers=headers)
    if route == "create" and 200 <= fault.raw.status < 300:
        build()
    return fault.raw.response()


def _count(query: Mapping[str, str], name: str) -> int | None:
    """The query parameter ``name`` as a count of entries, None when absent."""
    value = query.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"'{name}' must be a whole number of entries, not '{value}'.")
    return int(value)


def _invitation_code(body: dict[str, Any]) -> str:
    """An opaque, unique code; like Exalate's, it carries the connection's names."""
    payload = {
        "connection": body["name"],
        "local": body["localInstanceShortName"],
        "remote": body["remoteInstanceShortName"],
        "nonce": secrets.token_urlsafe(24),
    }
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
