"""A Slack emulator: the Web API and Socket Mode on loopback, for tests and the demo.

End-to-end tests run a real Bolt ``AsyncApp`` whose ``AsyncWebClient`` and
``AsyncSocketModeHandler`` talk to this server over real HTTP and WebSocket on
loopback. Real sockets exercise what mocks would hide: how slack_sdk encodes each
method's arguments, retry handlers reading ``Retry-After``, and the Socket Mode
handshake and acks.

Every Web API request is recorded as a `Call`. Tests assert on the calls, and
`FakeSlack.wait_for` waits for one without sleeping, because Bolt keeps running a
listener after it has acked.

Usage::

    async with FakeSlack(usergroups={"S1": ["U1"]}) as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert fake.calls_to("chat.postMessage")[0].args["text"] == "hi"

Things to know:

* slack_sdk picks up ``HTTPS_PROXY`` / ``HTTP_PROXY`` and ignores ``NO_PROXY``, so
  clear those variables in tests or loopback requests go to the proxy.
* Close a Socket Mode handler before the fake. A client that sees the server close
  its WebSocket reconnects, and keeps retrying while the fake is gone.
"""

# The waiting helpers take ``timeout=`` on purpose (ASYNC109 prefers asyncio.timeout at
# the call site): each has a safe default so a broken flow fails fast, and a timeout
# becomes an AssertionError that lists what the fake did see.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import WSCloseCode, WSMsgType, web

__all__ = ["Call", "FakeSlack"]

# Arguments that slack_sdk (or a hand-written form post) may send as JSON text.
# They are decoded so that tests compare Python objects, not serialised strings.
JSON_STRING_ARGS = frozenset(
    {"attachments", "blocks", "metadata", "user_auth_blocks", "view", "unfurls", "outputs"}
)

# Sent on auth.test like Slack does; Bolt copies it into ``context.authorize_result``.
BOT_SCOPES = "commands,chat:write,im:write,usergroups:read"

# The first message timestamp, in microseconds past this second.
_TS_SECOND = 1_700_000_000


@dataclass(frozen=True)
class Call:
    """One request the fake received, as the test wants to see it.

    ``args`` merges query parameters, form fields and the JSON body, because
    slack_sdk spreads arguments over all three depending on the method. ``token``
    is kept apart from ``args`` so that tests can compare ``args`` to exactly
    what the code under test passed.
    """

    method: str
    args: dict[str, Any]
    token: str | None


@dataclass(frozen=True)
class _Reply:
    """A scripted answer that replaces the normal one for a single call."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


class FakeSlack:
    """The Slack Web API, ``response_url`` sink and Socket Mode server, on loopback.

    It listens on ``127.0.0.1`` only, with a port chosen by the OS, so tests can
    run in parallel and nothing is ever reachable from outside the machine.
    """

    def __init__(
        self,
        *,
        usergroups: Mapping[str, Sequence[str]] | None = None,
        bot_user_id: str = "UBOT",
        team_id: str = "T1",
    ) -> None:
        self.usergroups: dict[str, list[str]] = {
            group: list(users) for group, users in (usergroups or {}).items()
        }
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self.calls: list[Call] = []
        self.member_of: set[str] = set()
        """Channels conversations.info reports the bot a member of."""
        self.acks: list[dict[str, Any]] = []
        """Every Socket Mode message with an ``envelope_id`` the client sent, in order."""
        self.connection_count = 0
        """How many WebSocket connections have been opened so far (reconnects add one)."""

        # One condition for every change a test may wait for: new calls, sockets
        # opening and closing. Waiters re-check their own predicate on each change.
        self._changed = asyncio.Condition()
        self._scripted: dict[str, deque[_Reply]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._pending_acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._timestamps = itertools.count(100, 100)
        self._view_ids = itertools.count(1)
        self._envelope_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._methods: dict[str, Callable[[Call], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "conversations.info": self._conversations_info,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "conversations.open": self._conversations_open,
            "usergroups.users.list": self._usergroups_users_list,
            "views.open": self._view,
            "views.update": self._view,
            "views.push": self._view,
            "views.publish": self._view,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> None:
        """Bind to a loopback port (ephemeral by default) and start serving."""
        if self._runner is not None:
            raise RuntimeError("FakeSlack is already started")
        app = web.Application()
        # slack_sdk sends a few methods (usergroups.users.list, chat.getPermalink) as GET.
        app.router.add_route("GET", "/api/{method}", self._api)
        app.router.add_route("POST", "/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/link", self._link)
        # A short shutdown timeout: nothing legitimate is still running at close().
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Close open WebSockets, stop the server and fail any pending `push_envelope`."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake slack closing")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for future in self._pending_acks.values():
            if not future.done():
                future.set_exception(
                    AssertionError("FakeSlack closed before the envelope was acked")
                )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; only known once started."""
        if self._base_url is None:
            raise RuntimeError("FakeSlack is not started")
        return self._base_url

    @property
    def api_url(self) -> str:
        """What ``AsyncWebClient(base_url=...)`` wants, trailing slash included."""
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "r") -> str:
        """A ``response_url`` for payloads; POSTs to it are recorded as ``response_url:<name>``."""
        return f"{self.base_url}/response/{name}"

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method, in order."""
        return [call for call in self.calls if call.method == method]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        timeout: float = 5.0,
    ) -> Call:
        """Return the first call of ``method`` matching ``predicate``, waiting if needed.

        Calls recorded before this was awaited count too, so the order of the
        test's ``await``s does not matter. It wakes on each new call instead of
        polling, and fails the test with the methods seen so far on timeout.
        """

        def find() -> Call | None:
            for call in self.calls:
                if call.method == method and (predicate is None or predicate(call)):
                    return call
            return None

        try:
            async with self._changed, asyncio.timeout(timeout):
                found = await self._changed.wait_for(find)
        except TimeoutError:
            seen = [call.method for call in self.calls]
            raise AssertionError(
                f"no matching {method} call within {timeout}s; calls so far: {seen}"
            ) from None
        assert found is not None
        return found

    # ------------------------------------------------------------------ scripting

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``ok: false``.

        The status stays 200, as Slack's does for API errors, so slack_sdk raises
        ``SlackApiError`` and no retry handler fires.
        """
        self._script(method, _Reply(200, {"ok": False, "error": error}, {}), times)

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` like Slack's rate limiter.

        HTTP 429 with ``Retry-After`` is what ``AsyncRateLimitErrorRetryHandler``
        keys on; without a handler slack_sdk raises ``SlackApiError``.
        """
        body = {"ok": False, "error": "ratelimited"}
        self._script(method, _Reply(429, body, {"Retry-After": str(retry_after)}), times)

    def _script(self, method: str, reply: _Reply, times: int) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        self._scripted.setdefault(method, deque()).extend([reply] * times)

    def _next_scripted(self, method: str) -> _Reply | None:
        queue = self._scripted.get(method)
        return queue.popleft() if queue else None

    # ------------------------------------------------------------------ socket mode

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """Wait until a Socket Mode client holds an open WebSocket."""
        try:
            async with asyncio.timeout(timeout):
                await self._newest_socket()
        except TimeoutError:
            raise AssertionError(f"no Socket Mode client connected within {timeout}s") from None

    async def push_envelope(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = True,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Deliver a payload over Socket Mode and return the client's ack message.

        ``envelope_type`` is ``"slash_commands"``, ``"interactive"`` or
        ``"events_api"``. The ack is ``{"envelope_id": ..., "payload": ...}`` with
        ``payload`` only when the listener acked with content. Bolt sends no ack at
        all when no listener acks within 3 s, so that shows up here as a timeout
        (an ``AssertionError``), as does having no client connected.
        """
        envelope_id = f"env-{next(self._envelope_ids)}"
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if envelope_type == "events_api":
            # Slack always sends these on events; Bolt turns them into x-slack-retry-* headers.
            envelope |= {"retry_attempt": 0, "retry_reason": ""}
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = ack
        try:
            async with asyncio.timeout(timeout):
                ws = await self._newest_socket()
                await ws.send_json(envelope)
                return await ack
        except TimeoutError:
            raise AssertionError(
                f"no ack for {envelope_type} envelope {envelope_id} within {timeout}s; "
                f"connected: {bool(self._live_sockets())}, acks so far: {self.acks}"
            ) from None
        finally:
            self._pending_acks.pop(envelope_id, None)

    async def request_reconnect(
        self, reason: str = "refresh_requested", *, timeout: float = 5.0
    ) -> None:
        """Send Slack's ``disconnect`` message and wait for the client to connect again.

        Slack does this routinely (e.g. every few hours, ``refresh_requested``), so
        a bot must survive it without losing payloads.
        """
        await self.wait_connected(timeout)
        ws = await self._newest_socket()
        before = self.connection_count
        await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}})
        try:
            async with self._changed, asyncio.timeout(timeout):
                await self._changed.wait_for(
                    lambda: self.connection_count > before and bool(self._live_sockets())
                )
        except TimeoutError:
            raise AssertionError(f"client did not reconnect within {timeout}s") from None

    def _live_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self._sockets if not ws.closed]

    async def _newest_socket(self) -> web.WebSocketResponse:
        """The most recently opened live WebSocket, waiting (unbounded) for one."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._live_sockets()))
        return self._live_sockets()[-1]

    # ------------------------------------------------------------------ HTTP handlers

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        arg_token = args.pop("token", None)
        token = _bearer_token(request) or (arg_token if isinstance(arg_token, str) else None)
        call = Call(method=method, args=args, token=token)
        await self._record(call)

        scripted = self._next_scripted(method)
        if scripted is not None:
            return web.json_response(
                scripted.body, status=scripted.status, headers=scripted.headers
            )
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        handler = self._methods.get(method)
        body = handler(call) if handler is not None else {"ok": True}
        headers = {"x-oauth-scopes": BOT_SCOPES} if method == "auth.test" else None
        return web.json_response(body, headers=headers)

    async def _response_url(self, request: web.Request) -> web.Response:
        method = f"response_url:{request.match_info['name']}"
        await self._record(Call(method=method, args=await _read_args(request), token=None))
        scripted = self._next_scripted(method)
        if scripted is not None:
            return web.json_response(
                scripted.body, status=scripted.status, headers=scripted.headers
            )
        return web.json_response({"ok": True})

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        """The Socket Mode WebSocket: hello, then envelopes out and acks in."""
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        hello = {
            "type": "hello",
            "num_connections": len(self._live_sockets()) + 1,
            "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A1"},
        }
        await ws.send_json(hello)
        # Registered only after hello, so no envelope can overtake it.
        async with self._changed:
            self._sockets.append(ws)
            self.connection_count += 1
            self._changed.notify_all()
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self._on_client_message(message.data)
        finally:
            async with self._changed:
                self._sockets.remove(ws)
                self._changed.notify_all()
        return ws

    def _on_client_message(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("envelope_id"), str):
            return
        self.acks.append(message)
        future = self._pending_acks.get(message["envelope_id"])
        if future is not None and not future.done():
            future.set_result(message)

    # ------------------------------------------------------------------ Web API methods

    def _next_ts(self) -> str:
        n = next(self._timestamps)
        return f"{_TS_SECOND + n // 1_000_000}.{n % 1_000_000:06d}"

    def _auth_test(self, call: Call) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://exalate-test.slack.com/",
            "team": "Exalate Test",
            "user": "exalate",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B1",
            "is_enterprise_install": False,
        }

    def _conversations_info(self, call: Call) -> dict[str, Any]:
        channel = str(call.args.get("channel", ""))
        return {"ok": True, "channel": {"id": channel, "is_member": channel in self.member_of}}

    def _apps_connections_open(self, call: Call) -> dict[str, Any]:
        if not (call.token or "").startswith("xapp-"):
            # What Slack really answers for a bot or user token.
            return {"ok": False, "error": "not_allowed_token_type"}
        ws_url = self.base_url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_url}/link"}

    def _chat_post_message(self, call: Call) -> dict[str, Any]:
        ts = self._next_ts()
        message = {"type": "message", "user": self.bot_user_id, "bot_id": "B1", **call.args}
        message.pop("channel", None)
        message["ts"] = ts
        return {"ok": True, "channel": call.args.get("channel"), "ts": ts, "message": message}

    def _chat_post_ephemeral(self, call: Call) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_update(self, call: Call) -> dict[str, Any]:
        message = {k: v for k, v in call.args.items() if k not in {"channel", "ts"}}
        return {
            "ok": True,
            "channel": call.args.get("channel"),
            "ts": call.args.get("ts"),
            "text": call.args.get("text", ""),
            "message": message,
        }

    def _conversations_open(self, call: Call) -> dict[str, Any]:
        if "channel" in call.args:
            return {"ok": True, "channel": {"id": call.args["channel"]}}
        users = [u for u in str(call.args.get("users", "")).split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        # One user is a DM ("D..."); several make a group DM ("G...").
        channel_id = f"D{users[0]}" if len(users) == 1 else "G" + "".join(users)
        return {"ok": True, "channel": {"id": channel_id}}

    def _usergroups_users_list(self, call: Call) -> dict[str, Any]:
        users = self.usergroups.get(str(call.args.get("usergroup")))
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    def _view(self, call: Call) -> dict[str, Any]:
        n = next(self._view_ids)
        view = call.args.get("view")
        view_id = call.args.get("view_id") or f"V{n}"
        return {
            "ok": True,
            "view": {
                **(view if isinstance(view, dict) else {}),
                "id": view_id,
                "hash": f"h{n}",
                "team_id": self.team_id,
            },
        }


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Merge query, form and JSON arguments, decoding JSON-text fields."""
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json" and request.body_exists:
        body = await request.json()
        if isinstance(body, dict):
            args.update(body)
    elif request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        for key, value in (await request.post()).items():
            args[key] = value.file.read() if isinstance(value, web.FileField) else value
    return {key: _decode_json_text(key, value) for key, value in args.items()}


def _decode_json_text(key: str, value: Any) -> Any:
    if key in JSON_STRING_ARGS and isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
