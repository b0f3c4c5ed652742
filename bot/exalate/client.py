"""The one place that speaks HTTP to Exalate on Jira.

Every remote call goes through ``ExalateClient._request``, which turns each way a call can
fail into one exception of ``bot.exalate.errors`` with a sentence a Jira admin can act on.
Callers therefore handle typed errors and typed models, never aiohttp or raw JSON.

Read calls are retried after a passing trouble (timeouts, refusals, 5xx, 429 within
``MAX_RETRY_AFTER``); the create call never is. The client logs nothing, so no body can
leak into logs. An answer is read up to ``MAX_ANSWER_BYTES`` and decoded so that nothing
in it (its size, its depth) raises anything but an ``ExalateError``: what the bot reads
comes from a server, or a proxy in front of it, that it does not control.

Each call is reported to ``observe`` under its route template
(``GET /rest/api/2/project/{key}``), never the filled-in path: a metric label per
project key typed into a form would grow without bound.
It does not own the ``aiohttp.ClientSession``: whoever built the session closes it.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
from pydantic import TypeAdapter, ValidationError

from bot.exalate import errors
from bot.exalate.auth import BasicAuth, BearerToken, Credentials
from bot.exalate.models import (
    Connection,
    ConnectionList,
    ConnectionSpec,
    CreatedConnection,
    JiraUser,
    Project,
    QueueCount,
    ServerInfo,
    SyncQueue,
)
from bot.exalate.paging import rest_of_list
from bot.exalate.statuses import (
    BASIC_HINT,
    CONNECTIONS_PATH,
    ISSUEHUB,
    MYSELF_PATH,
    PROJECT_PATH,
    PROJECTS_PATH,
    QUEUE_PATHS,
    SERVER_INFO_PATH,
    TOKEN_HINT,
    classify,
    too_large,
    unexpected_answer,
)

__all__ = ["CONNECTIONS_PATH", "ISSUEHUB", "ExalateClient"]

DETAIL_LIMIT = 300
"""The longest server message an error carries: enough to explain, short enough for Slack."""
MAX_RETRY_AFTER = 10.0  # seconds: a 429 asking for longer fails at once, to be retried later
MAX_ANSWER_BYTES = 10 * 1024 * 1024
"""The longest answer read: a list of thousands of connections is well under a megabyte,
and reading without a bound lets one answer take the process's memory."""
_READ_CHUNK = 64 * 1024

_T = TypeVar("_T")
_PROJECTS: TypeAdapter[list[Project]] = TypeAdapter(list[Project])
_PROJECT: TypeAdapter[Project] = TypeAdapter(Project)
_CONNECTIONS: TypeAdapter[ConnectionList] = TypeAdapter(ConnectionList)
_CREATED: TypeAdapter[CreatedConnection] = TypeAdapter(CreatedConnection)
_USER: TypeAdapter[JiraUser] = TypeAdapter(JiraUser)
_SERVER_INFO: TypeAdapter[ServerInfo] = TypeAdapter(ServerInfo)
_QUEUE_COUNT: TypeAdapter[QueueCount] = TypeAdapter(QueueCount)


class ExalateClient:
    """Exalate's REST API (``/rest/issuehub/4.0``) and the few Jira core calls the bot needs.

    ``base_url`` is Jira's base URL (``JIRA_URL``); Exalate on Jira Server / Data Center is
    a Jira app, so its API lives under the same address; it must not carry a user or
    password, which error messages quote it with. ``credentials`` is a personal access
    token or a username and password (``bot.exalate.auth``). Creating a connection gets
    its own, longer timeout because Exalate generates scripts and keys while the caller
    waits.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        credentials: Credentials,
        *,
        read_timeout: float = 10.0,
        create_timeout: float = 15.0,
        read_retries: int = 2,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observe: Callable[[str, float], None] | None = None,
        credentials_from: str | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ):
        url = urllib.parse.urlsplit(base_url)
        if url.username is not None or url.password is not None:
            raise ValueError("the Jira URL must not contain a user or password; pass credentials")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        # The variable holding the secret, to name in a refusal (never the value).
        self._credentials_from = credentials_from or (
            "JIRA_TOKEN" if isinstance(credentials, BearerToken) else "the password's variable"
        )
        # Longest first: a short secret replaced inside a longer one would leave the
        # longer one's remainder in the text.
        self._secrets = tuple(sorted(credentials.secrets(), key=len, reverse=True))
        self._read_timeout = read_timeout
        self._create_timeout = create_timeout
        self._read_retries = read_retries
        self._backoff = backoff
        self._sleep = sleep
        self._observe = observe
        self._max_answer_bytes = max_answer_bytes
        self._headers = {
            "Authorization": credentials.header(),
            "Accept": "application/json",
            # Atlassian's XSRF filter rejects non-browser POSTs without it; harmless on GETs.
            "X-Atlassian-Token": "no-check",
        }

    def __repr__(self) -> str:
        return f"ExalateClient(base_url={self._base_url!r})"

    async def list_projects(self) -> list[Project]:
        """The Jira projects the bot's Jira user can browse: candidates for incoming sync."""
        data = await self._request("GET", PROJECTS_PATH, timeout=self._read_timeout)
        return self._parse(_PROJECTS, data, "GET", PROJECTS_PATH)

    async def get_project(self, key: str) -> Project | None:
        """The project ``key``, or None when Jira has none (404): a project created since
        the list was read is found here."""
        try:
            data = await self._request(
                "GET", PROJECT_PATH, {"key": key}, timeout=self._read_timeout
            )
        except errors.ExalateEndpointMissing:
            return None
        return self._parse(_PROJECT, data, "GET", _fill(PROJECT_PATH, {"key": key}))

    async def list_connections(self) -> list[Connection]:
        """Every Exalate connection on this Jira that could be read, whatever its status."""
        return (await self.connection_list()).results

    async def connection_list(self) -> ConnectionList:
        """Every connection, with ``total``, for callers that must know it is complete.

        A first answer whose ``total`` exceeds its ``results`` is one page: the pages
        after it are asked for (``bot.exalate.paging``). What could not be read leaves the
        list incomplete (``total`` above ``results``), and then a connection missing
        from it proves nothing.
        """
        first = await self._connection_page({})
        if first.complete or not first.results:
            return first
        return await rest_of_list(first, self._connection_page)

    async def _connection_page(self, query: Mapping[str, str]) -> ConnectionList:
        data = await self._request("GET", CONNECTIONS_PATH, query=query, timeout=self._read_timeout)
        return self._parse(_CONNECTIONS, data, "GET", CONNECTIONS_PATH)

    async def create_connection(self, spec: ConnectionSpec) -> CreatedConnection:
        """Initiate a private, script-mode connection and return its invitation code.

        Not idempotent: after an ``ExalateTimeout``, an ``ExalateUnreachable`` other than
        ``ExalateNotSent`` or a 5xx the connection may exist; look before trying again.
        """
        data = await self._request(
            "POST", CONNECTIONS_PATH, json=spec.wire(), timeout=self._create_timeout
        )
        return self._parse(_CREATED, data, "POST", CONNECTIONS_PATH)

    async def myself(self) -> JiraUser:
        """The bot's Jira user: the cheapest proof that ``JIRA_URL`` and the credentials work."""
        data = await self._request("GET", MYSELF_PATH, timeout=self._read_timeout)
        return self._parse(_USER, data, "GET", MYSELF_PATH)

    async def server_info(self) -> ServerInfo:
        """Jira's version and deployment type, for start-up checks and support questions."""
        data = await self._request("GET", SERVER_INFO_PATH, timeout=self._read_timeout)
        return self._parse(_SERVER_INFO, data, "GET", SERVER_INFO_PATH)

    async def queue_size(self, queue: SyncQueue) -> int:
        """How many sync events wait in ``queue``. ``limit=0`` asks for the count alone
        (Exalate's monitoring guide); without it a node lists every waiting event.
        ``ExalateEndpointMissing`` where the node has no such endpoint."""
        path = QUEUE_PATHS[queue]
        data = await self._request("GET", path, query={"limit": "0"}, timeout=self._read_timeout)
        return self._parse(_QUEUE_COUNT, data, "GET", path).total

    async def _request(
        self,
        method: str,
        route: str,
        params: Mapping[str, str] | None = None,
        *,
        query: Mapping[str, str] | None = None,
        json: Any = None,
        timeout: float,  # noqa: ASYNC109 - handed to aiohttp's per-call ClientTimeout
    ) -> Any:
        """Send a call to ``route`` with its ``{name}`` parts filled from ``params`` and
        ``query`` as its query string; reads that meet a passing trouble are tried again.

        The path is built here, so ``observe`` can only ever see the template. Only GETs
        are repeated: they change nothing. Each retry waits ``backoff`` times 2ⁿ seconds
        with up to 50 % jitter, or what a 429's ``Retry-After`` asks if that is at most
        ``MAX_RETRY_AFTER``; a longer ask is not worth holding a person for.
        """
        path = _fill(route, params or {})
        attempts = self._read_retries + 1 if method == "GET" else 1
        for attempt in range(attempts):
            started = time.monotonic()
            try:
                return await self._send(method, path, query=query, json=json, timeout=timeout)
            except errors.ExalateUnavailable as error:
                delay = self._backoff * 2**attempt * (1 + random.random() / 2)  # noqa: S311
                if isinstance(error, errors.ExalateRateLimited) and error.retry_after is not None:
                    delay = error.retry_after
                if attempt + 1 == attempts or delay > MAX_RETRY_AFTER:
                    raise
                await self._sleep(delay)
            finally:
                if self._observe is not None:
                    self._observe(f"{method} {route}", time.monotonic() - started)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        json: Any = None,
        timeout: float,  # noqa: ASYNC109 - handed to aiohttp's per-call ClientTimeout
    ) -> Any:
        """Send one call and return its decoded JSON, or raise the matching ``ExalateError``.

        Redirects are not followed: Jira redirects REST calls only when ``JIRA_URL`` is
        wrong, and a followed POST would silently turn into a GET. Chained exceptions are
        dropped (``from None``) because aiohttp's may carry the request headers. An error
        answer too large to read is judged by its status alone; a 2xx one fails as an
        unexpected answer: of a create, it may still have been made.
        """
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                params=query or None,
                json=json,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
                raise_for_status=False,
            ) as response:
                body = await _read_capped(response, self._max_answer_bytes)
                status = response.status
                retry_after = response.headers.get("Retry-After")
                location = response.headers.get("Location")
        except TimeoutError:
            raise self._timeout(method, path, timeout) from None
        except aiohttp.ClientError as exc:
            reason = self._scrub(str(exc)) or type(exc).__name__
            # Opening the connection failed: nothing was sent. Later, it may have been.
            unreachable = (
                errors.ExalateNotSent
                if isinstance(exc, aiohttp.ClientConnectorError)
                else errors.ExalateUnreachable
            )
            raise unreachable(f"Could not reach Jira at {self._base_url} ({reason}).") from None
        if 200 <= status < 300:
            if body is None:
                raise too_large(method, path, status, self._max_answer_bytes)
            try:
                return _loads(body)
            except ValueError:
                raise unexpected_answer(method, path, status) from None
        raise self._error_for(
            status,
            method,
            path,
            detail=self._detail(body) if body is not None else None,
            retry_after=retry_after,
            location=location,
        )

    def _parse(self, adapter: TypeAdapter[_T], data: Any, method: str, path: str) -> _T:
        """Validate a 2xx body; its content never goes into the error (it may hold a code)."""
        try:
            return adapter.validate_python(data)
        except (ValidationError, RecursionError):
            raise unexpected_answer(method, path, None) from None

    def _timeout(self, method: str, path: str, timeout: float) -> errors.ExalateTimeout:
        message = f"Jira did not answer {method} {path} within {timeout:g} s."
        if method != "GET":
            message += (
                " The change may still have been made; check Exalate's connection list"
                " before trying again."
            )
        return errors.ExalateTimeout(message)

    def _error_for(
        self,
        status: int,
        method: str,
        path: str,
        *,
        detail: str | None,
        retry_after: str | None,
        location: str | None,
    ) -> errors.ExalateError:
        """Pick the error class for a non-2xx status and word its message for an admin."""
        service = "Exalate" if path.startswith(ISSUEHUB) else "Jira"
        where = f"HTTP {status} on {method} {path}"
        said = f" {service} said: {detail}" if detail else ""
        if status == 429:
            seconds = _retry_after_seconds(retry_after)
            when = f"in {seconds:g} s" if seconds is not None else "later"
            return errors.ExalateRateLimited(
                f"Jira is rate-limiting the bot ({where}); try again {when}.{said}",
                status=status,
                detail=detail,
                retry_after=seconds,
            )
        cls, template = classify(status, method, path)
        target = f" to {self._scrub(location)[:DETAIL_LIMIT]}" if location else ""
        hint = BASIC_HINT if isinstance(self._credentials, BasicAuth) else TOKEN_HINT
        text = (
            template.format(where=where, service=service, target=target, **hint)
            .replace("{variable}", self._credentials_from)
            .replace("{user}", self._username)
        )
        return cls(text + said, status=status, detail=detail)

    @property
    def _username(self) -> str:
        """The basic-auth user, named in a refusal; a token's owner is not known here."""
        return self._credentials.username if isinstance(self._credentials, BasicAuth) else ""

    def _detail(self, body: bytes) -> str | None:
        """The server's own error message from an error body, trimmed and scrubbed.

        Exalate sends ``{"message"}``, Jira ``{"errorMessages": [], "errors": {}}``.
        Anything else (an HTML error page, say) yields ``None``: it would not help.
        """
        try:
            data = _loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        parts: list[str] = []
        if isinstance(data.get("message"), str):
            parts.append(data["message"])
        messages = data.get("errorMessages")
        if isinstance(messages, list):
            parts.extend(m for m in messages if isinstance(m, str))
        fields = data.get("errors")
        if isinstance(fields, dict):
            parts.extend(
                f"{field}: {text}" for field, text in fields.items() if isinstance(text, str)
            )
        text = " ".join(" ".join(p.split()) for p in parts if p)
        if not text:
            return None
        text = self._scrub(text)
        if len(text) > DETAIL_LIMIT:
            text = text[: DETAIL_LIMIT - 1] + "…"
        return text

    def _scrub(self, text: str) -> str:
        """Remove every secret of the credentials (the token; the password and the
        encoded header), in case a server or proxy echoes one back in a message."""
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        return text


def _fill(route: str, params: Mapping[str, str]) -> str:
    """``route`` with each ``{name}`` replaced by its parameter, percent-encoded whole."""
    return route.format_map({k: urllib.parse.quote(v, safe="") for k, v in params.items()})


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The answer's body, or None when it is longer than ``limit`` bytes: a declared
    length is believed before reading, and the body is read in chunks and dropped as soon
    as it grows past the limit (also decompressed, and also without a declared length)."""
    if response.content_length is not None and response.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _loads(body: bytes) -> Any:
    """Decode JSON whatever the Content-Type claims; raise ``ValueError`` if it is not,
    also when it nests deeper than the decoder can follow."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date turned into time from now."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)
