"""The simulator's own HTTP knobs, ``/_simulator/…``: what a test or a person steers it
with from outside the process (faults, raw answers, issued codes, latency, paging, the
sync queues and their endpoints, connections made in the console, the partner accepting,
projects)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from aiohttp import web

from bot.exalate.models import SyncQueue
from bot.sandbox.simulator_queues import QUEUE_ROUTES

if TYPE_CHECKING:
    from bot.sandbox.exalate_simulator import Route, Simulator


RAW_CHUNK = 64 * 1024  # bytes a chunked raw answer sends at a time


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """An answer sent as it is, instead of the route's own (see the module docstring)."""

    body: bytes
    repeat: int = 1
    status: int = 200
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    chunked: bool = False

    def response(self) -> web.Response:
        headers = {**self.headers, "Content-Type": self.content_type}
        if self.chunked:
            return web.Response(status=self.status, headers=headers, body=self._chunks())
        return web.Response(status=self.status, headers=headers, body=self.body * self.repeat)

    async def _chunks(self) -> AsyncIterator[bytes]:
        """The body in pieces of whole repeats, about ``RAW_CHUNK`` bytes each, built as
        they are sent: no length is declared."""
        per_chunk = max(1, RAW_CHUNK // max(1, len(self.body)))
        whole, rest = divmod(self.repeat, per_chunk)
        chunk = self.body * per_chunk
        for _ in range(whole):
            yield chunk
        if rest:
            yield self.body * rest


def knob_routes(simulator: Simulator) -> list[web.RouteDef]:
    """The knobs' routes, acting on ``simulator`` through its Python methods, which
    check what they are given as well (an unknown route, say)."""

    async def fault(request: web.Request) -> web.Response:
        body = await _json_object(request)
        route, status = body.get("route"), body.get("status")
        times, retry_after = body.get("times", 1), body.get("retry_after")
        message = body.get("message", "Simulated failure")
        if not isinstance(route, str):
            raise _bad_knob("route must be a string")
        if not _is_int(status) or not 100 <= status <= 599:
            raise _bad_knob("status must be an HTTP status code")
        if not _is_int(times) or times < 1:
            raise _bad_knob("times must be a positive integer")
        if retry_after is not None and (not _is_int(retry_after) or retry_after < 0):
            raise _bad_knob("retry_after must be a non-negative integer")
        if not isinstance(message, str):
            raise _bad_knob("message must be a string")
        try:
            simulator.fail(
                cast("Route", route), status, times=times, message=message, retry_after=retry_after
            )
        except ValueError as error:  # an unknown route
            raise _bad_knob(str(error)) from None
        return web.json_response({"route": route, "status": status, "times": times})

    async def answer(request: web.Request) -> web.Response:
        body = await _json_object(request)
        route, times = body.get("route"), body.get("times", 1)
        if not isinstance(route, str):
            raise _bad_knob("route must be a string")
        if not _is_int(times) or times < 1:
            raise _bad_knob("times must be a positive integer")
        try:
            simulator.answer_raw(cast("Route", route), _raw_answer(body), times=times)
        except ValueError as error:  # an unknown route
            raise _bad_knob(str(error)) from None
        return web.json_response({"route": route, "times": times})

    async def code(request: web.Request) -> web.Response:
        issued = (await _json_object(request)).get("code")
        if not isinstance(issued, str) or not issued:
            raise _bad_knob("code must be a non-empty string")
        simulator.issue_code(issued)
        return web.json_response({"issued": len(issued)})

    async def latency(request: web.Request) -> web.Response:
        body = await _json_object(request)
        for key in ("create", "read"):
            value = body.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise _bad_knob(f"{key} must be a non-negative number of seconds")
        if body.get("create") is not None:
            simulator.create_latency = float(body["create"])
        if body.get("read") is not None:
            simulator.read_latency = float(body["read"])
        return web.json_response(
            {"create": simulator.create_latency, "read": simulator.read_latency}
        )

    async def paging(request: web.Request) -> web.Response:
        body = await _json_object(request)
        page_size, parameter = body.get("page_size"), body.get("parameter", "offset")
        if page_size is not None and (not _is_int(page_size) or page_size < 1):
            raise _bad_knob("page_size must be a positive integer, or null for no pages")
        try:
            simulator.set_paging(page_size, parameter)
        except (TypeError, ValueError) as error:  # an unknown parameter name
            raise _bad_knob(str(error)) from None
        return web.json_response(
            {"page_size": simulator.page_size, "parameter": simulator.page_parameter}
        )

    async def queues(request: web.Request) -> web.Response:
        body = _only(await _json_object(request), [q.value for q in SyncQueue])
        for queue, size in body.items():
            if not _is_int(size) or size < 0:
                raise _bad_knob(f"{queue} must be a non-negative integer")
        for queue, size in body.items():
            simulator.set_queue(queue, size)
        return web.json_response({q.value: n for q, n in simulator.queues.sizes.items()})

    async def endpoints(request: web.Request) -> web.Response:
        body = _only(await _json_object(request), list(QUEUE_ROUTES))
        for endpoint, served in body.items():
            if not isinstance(served, bool):
                raise _bad_knob(f"{endpoint} must be true or false")
        for endpoint, served in body.items():
            (simulator.restore_endpoint if served else simulator.remove_endpoint)(endpoint)
        return web.json_response({e: simulator.queues.serves(e) for e in QUEUE_ROUTES})

    async def console_connection(request: web.Request) -> web.Response:
        """As a person makes one in the Exalate console; 409 as Exalate's create says it."""
        body = await _json_object(request)
        name, status = body.get("name"), body.get("status", "PENDING")
        if not isinstance(name, str) or not name.strip():
            raise _bad_knob("name must be a non-empty string")
        if not isinstance(status, str) or not status:
            raise _bad_knob("status must be a non-empty string")
        try:
            simulator.named(name)
        except KeyError:
            made = simulator.create_in_console(name, status=status)
            return web.json_response({"id": made}, status=201)
        return web.json_response({"message": f"Connection '{name}' already exists"}, status=409)

    async def accept(request: web.Request) -> web.Response:
        return on_connection(request, simulator.accept)

    async def status(request: web.Request) -> web.Response:
        status = (await _json_object(request)).get("status")
        if not isinstance(status, str) or not status:
            raise _bad_knob("status must be a non-empty string")
        return on_connection(request, lambda name: simulator.set_status(name, status))

    async def delete(request: web.Request) -> web.Response:
        return on_connection(request, simulator.delete)

    def on_connection(request: web.Request, action: Callable[[str], None]) -> web.Response:
        name = request.match_info["name"]
        try:
            connection = simulator.named(name)
            action(name)
        except KeyError:
            raise web.HTTPNotFound(
                text=json.dumps({"message": f"No connection named '{name}'"}),
                content_type="application/json",
            ) from None
        return web.json_response({k: v for k, v in connection.items() if k != "invitationCode"})

    async def projects(request: web.Request) -> web.Response:
        count = (await _json_object(request)).get("count")
        if not _is_int(count) or count < 0:
            raise _bad_knob("count must be a non-negative integer")
        simulator.set_project_count(count)
        return web.json_response({"count": len(simulator.projects)})

    async def calls(request: web.Request) -> web.Response:
        # Create bodies hold no secret: the invitation code exists only in the answer.
        return web.json_response({"create": simulator.create_calls})

    return [
        web.post("/_simulator/faults", fault),
        web.post("/_simulator/answers", answer),
        web.post("/_simulator/codes", code),
        web.post("/_simulator/latency", latency),
        web.post("/_simulator/paging", paging),
        web.post("/_simulator/queues", queues),
        web.post("/_simulator/endpoints", endpoints),
        web.post("/_simulator/connections", console_connection),
        web.post("/_simulator/connections/{name}/accept", accept),
        web.post("/_simulator/connections/{name}/status", status),
        web.delete("/_simulator/connections/{name}", delete),
        web.post("/_simulator/projects", projects),
        web.get("/_simulator/calls", calls),
    ]


MAX_RAW_BYTES = 256 * 1024 * 1024
"""The largest raw answer a knob may ask for: enough to go well past any reader's bound."""


def _raw_answer(body: dict[str, Any]) -> RawAnswer:
    """The raw answer a knob's body describes; a bad knob says which value is wrong."""
    text, repeat = body.get("body"), body.get("repeat", 1)
    status, content_type = body.get("status", 200), body.get("content_type", "application/json")
    headers, chunked = body.get("headers", {}), body.get("chunked", False)
    if not isinstance(text, str):
        raise _bad_knob("body must be a string")
    if not _is_int(repeat) or repeat < 1 or len(text.encode()) * repeat > MAX_RAW_BYTES:
        raise _bad_knob(f"repeat must be a positive integer, the whole at most {MAX_RAW_BYTES}")
    if not _is_int(status) or not 100 <= status <= 599:
        raise _bad_knob("status must be an HTTP status code")
    if not isinstance(content_type, str):
        raise _bad_knob("content_type must be a string")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _bad_knob("headers must be an object of strings")
    if not isinstance(chunked, bool):
        raise _bad_knob("chunked must be true or false")
    return RawAnswer(text.encode(), repeat, status, content_type, headers, chunked)


async def _json_object(request: web.Request) -> dict[str, Any]:
    """A knob's JSON body; an empty body counts as ``{}``."""
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        raise _bad_knob("the body must be JSON") from None
    if not isinstance(body, dict):
        raise _bad_knob("the body must be a JSON object")
    return body


def _only(body: dict[str, Any], known: list[str]) -> dict[str, Any]:
    """``body``, refused when it names a key the knob does not know: a misspelt one
    would otherwise change nothing, silently."""
    if unknown := sorted(set(body) - set(known)):
        raise _bad_knob(f"unknown key {unknown[0]!r}; expected some of {sorted(known)}")
    return body


def _bad_knob(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"message": message}), content_type="application/json"
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
