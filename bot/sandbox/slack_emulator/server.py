"""The emulator's server: the Web API, response URLs and Socket Mode on loopback.

End-to-end tests run a real Bolt ``AsyncApp`` whose ``AsyncWebClient`` and
``AsyncSocketModeHandler`` talk to this server over real HTTP and WebSocket on
loopback. Real sockets exercise what mocks would hide: how slack_sdk encodes each
method's arguments, retry handlers reading ``Retry-After``, and the Socket Mode
handshake and acks.

Every Web API request is recorded as a `Call`. Tests assert on the calls, and
`FakeSlack.wait_for` waits for one without sleeping, because Bolt keeps running a
listener after it has acked. What each method answers, refusals included, is the
`Workspace`'s business; this module carries it over HTTP and WebSocket.

Like Slack, the emulator hands out what payloads carry: `FakeSlack.trigger_id` and
`FakeSlack.response_url` issue them, and only issued ones are honoured, within
Slack's limits. Acks must arrive within `ACK_DEADLINE` (`push_envelope` and
`FakeSlack.check_ack` enforce it), or Slack would show the person an error.

A test steers the workspace as things happen in Slack: `FakeSlack.archive` a channel,
`FakeSlack.deactivate` a person, `FakeSlack.revoke_token`, `FakeSlack.throttle` a method
(rate limits are off unless asked for), `FakeSlack.redeliver_event`; `fail`,
`answer` and `rate_limit` script the next answers of a method outright.

Usage::

    async with FakeSlack(usergroups={"S1": ["U1"]}, channels={"C1"}) as fake:
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
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import WSCloseCode, web

from bot.sandbox.slack_emulator.block_kit import ack_problems
from bot.sandbox.slack_emulator.rate_limits import SLACK_LIMITS, Limit, RateLimiter
from bot.sandbox.slack_emulator.socket_mode import SocketModeSide
from bot.sandbox.slack_emulator.workspace import Refusal, Workspace

__all__ = ["ACK_DEADLINE", "Call", "FakeSlack", "retry_headers"]

ACK_DEADLINE = 3.0
"""Seconds Slack waits for an HTTP answer or a Socket Mode ack before showing an error."""

# Arguments that slack_sdk (or a hand-written form post) may send as JSON text.
# They are decoded so that tests compare Python objects, not serialised strings.
JSON_STRING_ARGS = frozenset(
    {"attachments", "blocks", "metadata", "user_auth_blocks", "view", "unfurls", "outputs"}
)


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


def retry_headers(retry_num: int = 1, reason: str = "http_timeout") -> dict[str, str]:
    """The headers Slack adds when it delivers an Events API request again over HTTP.

    ``reason`` is one of Slack's: ``http_timeout`` (no answer within 3 s),
    ``too_many_redirects``, ``connection_failed``, ``ssl_error``, ``http_error`` (an answer
    other than 2xx) or ``unknown_error``. Slack retries three times: at once, after a
    minute, after five. A harness posting events merges these into its signed request's
    headers (they are not part of the signature) and sends the same body again.
    """
    if retry_num < 1:
        raise ValueError("a redelivery is attempt 1 or later")
    return {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason}


@dataclass(frozen=True)
class _Reply:
    """A scripted answer that replaces the normal one for a single call."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


class FakeSlack(SocketModeSide):
    """The Slack Web API, ``response_url`` sink and Socket Mode server, on loopback.

    It listens on ``127.0.0.1`` only, with a port chosen by the OS, so tests can
    run in parallel and nothing is ever reachable from outside the machine.
    """

    def __init__(
        self,
        *,
        usergroups: Mapping[str, Sequence[str]] | None = None,
        users: Iterable[str] = (),
        channels: Iterable[str] = (),
        private_channels: Iterable[str] = (),
        scopes: Iterable[str] | None = None,
        extra_scopes: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
        ack_deadline: float = ACK_DEADLINE,
        socket_mode_elsewhere: str | None = None,
    ) -> None:
        """``users`` exist besides the groups' members; the bot is in ``channels``;
        ``private_channels`` are private (the bot is in those of them also in
        ``channels``); its token has ``scopes`` (by default `DEFAULT_SCOPES`: the
        manifest's) plus ``extra_scopes``; ``clock`` times trigger ids, response URLs
        and rate limits (a test may move it); an ack later than ``ack_deadline`` seconds
        fails the test. ``socket_mode_elsewhere``, another emulator's
        ``socket_mode_url``, sends Socket Mode clients there, as Slack serves its
        WebSockets from other hosts than its Web API: a benchmark then times acks in a
        process that answers no Web API calls."""
        self.ack_deadline = ack_deadline
        self._socket_mode_elsewhere = socket_mode_elsewhere
        self.workspace = Workspace(
            socket_mode_url=lambda: self._socket_mode_elsewhere or self.socket_mode_url,
            usergroups={group: list(members) for group, members in (usergroups or {}).items()},
            users=set(users),
            member_of=set(channels),
            private=set(private_channels),
            clock=clock,
        )
        if scopes is not None:
            self.workspace.scopes = set(scopes)
        self.workspace.scopes |= set(extra_scopes)
        self._limiter = RateLimiter(clock)
        self.calls: list[Call] = []
        self.faults: list[Exception] = []
        """Exceptions the emulator itself raised; ``close`` fails with the first."""
        self.acks = []
        self.connection_count = 0

        # One condition for every change a test may wait for: new calls, sockets
        # opening and closing. Waiters re-check their own predicate on each change.
        self._changed = asyncio.Condition()
        self._scripted: dict[str, deque[_Reply]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._pending_acks: dict[str, asyncio.Future[tuple[dict[str, Any], float]]] = {}
        self._envelope_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

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
        if self.faults:
            raise AssertionError(f"the Slack emulator failed: {self.faults[0]!r}")

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

    @property
    def socket_mode_url(self) -> str:
        """This emulator's own Socket Mode WebSocket, ``ws://127.0.0.1:PORT/link``."""
        return self.base_url.replace("http://", "ws://", 1) + "/link"

    def response_url(self, name: str = "r") -> str:
        """Issue the ``response_url`` called ``name`` (the same URL for the same name).

        POSTs to it are recorded as ``response_url:<name>``; like Slack, it takes
        five of them within thirty minutes of being issued.
        """
        self.workspace.issue_response_url(name)
        return f"{self.base_url}/response/{name}"

    def trigger_id(self) -> str:
        """Issue a trigger_id, as Slack puts one in each command, click and submission."""
        return self.workspace.issue_trigger()

    def deactivate(self, user_id: str) -> None:
        """Deactivate a person, as Slack does: users.info shows them ``"deleted": true``
        and conversations.open with them answers ``user_disabled``, but a DM already open
        still takes posts (python-slack-sdk#1156); those land in `unread`."""
        self.workspace.deactivate(user_id)

    def reactivate(self, user_id: str) -> None:
        """Undo `deactivate`."""
        self.workspace.reactivate(user_id)

    @property
    def unread(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Posts Slack took into a deactivated person's DM, by (channel, ts)."""
        return self.workspace.unread

    def archive(self, channel: str) -> None:
        """Archive ``channel``: chat.postMessage (and postEphemeral) there answer
        ``is_archived``, chat.update of a message there ``is_inactive`` (what Slack's
        reference documents for chat.update), conversations.info ``"is_archived": true``."""
        self.workspace.archive(channel)

    def unarchive(self, channel: str) -> None:
        """Undo `archive`."""
        self.workspace.unarchive(channel)

    def make_private(self, channel: str, *, private: bool = True) -> None:
        """Make ``channel`` private (or public again). Outside a private channel the bot
        is told ``channel_not_found``, by chat.postMessage and conversations.info alike,
        where a public one says ``not_in_channel``."""
        if private:
            self.workspace.private.add(channel)
        else:
            self.workspace.private.discard(channel)

    def revoke_token(self, reason: str = "token_revoked", *, token: str | None = None) -> None:
        """Refuse every Web API call with the bot token, auth.test included: 200 and
        ``ok: false`` with ``reason`` (``token_revoked``, ``invalid_auth`` or
        ``account_inactive``), as Slack does. ``token`` picks one token; by default
        every bot token is refused. App-level (``xapp-``) tokens are not affected."""
        self.workspace.revoke(reason, token)

    def restore_token(self, *, token: str | None = None) -> None:
        """Honour ``token`` again; by default every token refused is honoured again."""
        self.workspace.restore(token)

    @property
    def member_of(self) -> set[str]:
        """Channels the bot is a member of (it may post only there and in DMs)."""
        return self.workspace.member_of

    @property
    def messages(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Each message in Slack now, by (channel, ts), with its latest update applied."""
        return self.workspace.messages

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

    def answer(self, method: str, body: dict[str, Any], *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``body`` (status 200)."""
        self._script(method, _Reply(200, body, {}), times)

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` like Slack's rate limiter.

        HTTP 429 with ``Retry-After`` is what ``AsyncRateLimitErrorRetryHandler``
        keys on; without a handler slack_sdk raises ``SlackApiError``.
        """
        body = {"ok": False, "error": "ratelimited"}
        self._script(method, _Reply(429, body, {"Retry-After": str(retry_after)}), times)

    def throttle(
        self,
        method: str,
        calls: int,
        *,
        window: float = 60.0,
        per_channel: bool = False,
        retry_after: int | None = None,
    ) -> None:
        """Let ``method`` take ``calls`` calls per ``window`` seconds (per channel if
        ``per_channel``); beyond that it answers as Slack's rate limiter does: HTTP 429,
        ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``. ``Retry-After`` is
        the whole seconds until a call is allowed again (at least 1), or ``retry_after``.
        Windows are timed by the emulator's clock. Calls refused do not count."""
        self._limiter.set(method, Limit(calls, window, per_channel, retry_after))

    def throttle_like_slack(self, *, window_scale: float = 1.0) -> None:
        """`throttle` every method the emulator answers by its documented tier:
        chat.postMessage one a second per channel, chat.update 50 a minute, and so on
        (`rate_limits.SLACK_LIMITS`). ``window_scale`` shrinks the windows for quick
        tests: 0.01 makes a minute 0.6 s."""
        for method, (calls, window, per_channel) in SLACK_LIMITS.items():
            self.throttle(method, calls, window=window * window_scale, per_channel=per_channel)

    def unthrottle(self, method: str | None = None) -> None:
        """Lift the limit on ``method`` (by default, on every method)."""
        self._limiter.clear(method)

    def _script(self, method: str, reply: _Reply, times: int) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        self._scripted.setdefault(method, deque()).extend([reply] * times)

    def _next_scripted(self, method: str) -> _Reply | None:
        queue = self._scripted.get(method)
        return queue.popleft() if queue else None

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

        headers = {
            "x-oauth-scopes": self.workspace.granted(),
            "x-accepted-oauth-scopes": self.workspace.accepted(method),
        }
        scripted = self._next_scripted(method)
        if scripted is not None:
            return web.json_response(
                scripted.body, status=scripted.status, headers={**headers, **scripted.headers}
            )
        retry_after = self._limiter.check(method, args)
        if retry_after is not None:
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={**headers, "Retry-After": str(retry_after)},
            )
        try:
            body = self.workspace.answer(method, args, token)
        except Refusal as refusal:  # Slack's refusals are 200s too, unknown methods included
            return web.json_response(refusal.body(), headers=headers)
        except Exception as fault:  # the emulator's own bug: fail the test that met it
            self.faults.append(fault)
            return web.json_response({"ok": False, "error": "emulator_fault"}, status=500)
        return web.json_response(body, headers=headers)

    async def _response_url(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        method = f"response_url:{name}"
        args = await _read_args(request)
        await self._record(Call(method=method, args=args, token=None))
        scripted = self._next_scripted(method)
        if scripted is not None:
            return web.json_response(
                scripted.body, status=scripted.status, headers=scripted.headers
            )
        try:
            self.workspace.use_response_url(name)
        except Refusal as refusal:
            return web.json_response(refusal.body(), status=404)
        problems = ack_problems(args)
        if problems:
            return web.json_response(
                {
                    "ok": False,
                    "error": "invalid_blocks",
                    "response_metadata": {"messages": problems},
                },
                status=400,
            )
        return web.json_response({"ok": True})


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
