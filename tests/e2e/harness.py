"""Drives the bot in HTTP mode the way Slack does: signed requests over real HTTP.

The bot runs with its real composition root, pointed at a fake Slack Web API and the
Exalate simulator, both on loopback. Tests speak as people (``command``, ``submit``,
``click``) and read what the people would see from the fake's recorded calls.

Every answer is held to Slack's rules: it must arrive within the ack deadline and carry
nothing Slack would refuse, or the test fails, as the person would see an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from slack_sdk.signature import SignatureVerifier

from bot.approvals.model import DEFAULT_SITE, ConnectionRequest
from bot.config import Settings, load_settings
from bot.runtime.app import Runtime
from bot.runtime.http_limits import DEFAULT_MAX_CONNECTIONS
from bot.runtime.serve import serve_http
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import Call, FakeSlack
from bot.service import Site
from handlers.blocks import request_modal
from handlers.ids import Action, Block, View
from storage import RequestRepository, make_sessionmaker
from storage.db import sqlite_file
from tests.processes import free_port

SIGNING_SECRET = "e2e-signing-secret"
BOT_TOKEN = "xoxb-e2e-bot-token"
JIRA_TOKEN = "e2e-jira-personal-access-token"
# EXALATE_SECRET_KEY where there is no SQLite file to keep a key file beside (PostgreSQL).
SECRET_KEY = "f_TGDiAdn7VCfBTAs8jCmN_4qMkbvx_YzG8vo6TYUoc="
APPROVAL_CHANNEL = "C0APPROVALS"
ALICE, BOB, CAROL, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"
PEOPLE = (ALICE, BOB, CAROL, MALLORY)
ADMINS_GROUP = "S0ADMINS"


def signed_headers(
    body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None, content_type: str
) -> dict[str, str]:
    """The headers Slack sends: a v0 HMAC of ``v0:{timestamp}:{body}``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": content_type,
    }


@dataclass
class Reply:
    """The bot's HTTP answer to one request, and the response_url the request carried."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    response_url: str = ""
    """The name of the request's response_url: ``private_reply`` waits for its posts."""


@dataclass
class SlackSide:
    """What Slack sends to one bot endpoint (``url``), and what people then see in the
    fake Slack; for bots in processes of their own (several replicas) too."""

    slack: FakeSlack
    simulator: Simulator
    url: str
    http: aiohttp.ClientSession
    _payloads: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def post(
        self,
        body: bytes,
        content_type: str,
        *,
        view: dict[str, Any] | None = None,
        **signing: Any,
    ) -> Reply:
        """POST as Slack does; the answer must come within the ack deadline and be one
        Slack accepts (for a submission of ``view``, errors naming its input blocks)."""
        headers = signed_headers(body, content_type=content_type, **signing)
        sent = time.monotonic()
        async with self.http.post(self.url, data=body, headers=headers) as response:
            text = await response.text()
        elapsed = time.monotonic() - sent
        if not text.strip():
            self.slack.check_ack(elapsed, {})
            return Reply(response.status)
        # Bolt answers a text-only ack as plain text, which Slack shows as the reply.
        is_json = response.content_type == "application/json"
        reply = Reply(response.status, json.loads(text) if is_json else {"text": text})
        self.slack.check_ack(elapsed, reply.body, view)
        return reply

    async def post_form(self, fields: dict[str, str], **signing: Any) -> Reply:
        body = urllib.parse.urlencode(fields).encode()
        return await self.post(body, "application/x-www-form-urlencoded", **signing)

    async def post_payload(self, payload: dict[str, Any]) -> Reply:
        return await self.post_form({"payload": json.dumps(payload)})

    async def post_submission(self, payload: dict[str, Any], view: dict[str, Any] | None) -> Reply:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded", view=view)

    def opened_view(self, callback_id: str, request_id: int | None = None) -> dict[str, Any] | None:
        """The newest modal the bot opened with ``callback_id`` (about ``request_id``)."""
        for call in reversed(self.slack.calls_to("views.open")):
            view = call.args.get("view")
            if not isinstance(view, dict) or view.get("callback_id") != callback_id:
                continue
            metadata = str(view.get("private_metadata", ""))
            if request_id is None or metadata.split(":", 1)[0] == str(request_id):
                return view
        return None

    async def command(self, text: str, user: str = ALICE) -> Reply:
        """``/exalate <text>`` typed by ``user`` in a channel."""
        fields = self.command_fields(text, user)
        reply = await self.post_form(fields)
        reply.response_url = fields["response_url"].rsplit("/", 1)[1]
        return reply

    def command_fields(self, text: str, user: str = ALICE) -> dict[str, str]:
        """What Slack posts for a slash command, with a fresh trigger_id and response_url."""
        return {
            "token": "legacy",
            "team_id": "T1",
            "team_domain": "acme",
            "channel_id": "C0GENERAL",
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/exalate",
            "text": text,
            "api_app_id": "A1",
            "response_url": self.slack.response_url(f"command-{next(self._payloads)}"),
            "trigger_id": self.slack.trigger_id(),
        }

    async def submit(self, user: str = ALICE, **values: str) -> Reply:
        """Submit the request form with ``values`` keyed by field (block id)."""
        state: dict[str, Any] = {}
        for block_id, value in values.items():
            if block_id in ("project_key", "site"):
                option = {"value": value, "text": {"type": "plain_text", "text": value}}
                action = Action.PROJECT.value if block_id == "project_key" else "input"
                state[block_id] = {action: {"type": "static_select", "selected_option": option}}
            else:
                state[block_id] = {"input": {"type": "plain_text_input", "value": value}}
        # The form as the person saw it: opened by /exalate connect, or as the bot draws it;
        # Slack sends its private_metadata back.
        view = self.opened_view(View.REQUEST.value) or request_modal()
        metadata = str(view.get("private_metadata") or "")
        return await self.post_submission(
            self._submission(user, View.REQUEST.value, metadata, state), view
        )

    async def submit_request(self, user: str = ALICE, **overrides: str) -> Reply:
        """A valid request for acme_to_partner unless ``overrides`` say otherwise."""
        values = {
            "local_short_name": "acme",
            "remote_short_name": "partner",
            "connection_name": "",
            "description": "Support tickets",
            "project_key": "SUP",
        }
        return await self.submit(user, **(values | overrides))

    async def submit_reason(
        self, request_id: int, reason: str, user: str = BOB, *, everything: bool = False
    ) -> Reply:
        """Submit the Reject modal the bot opened for the request (or, if it opened none,
        one naming only the request, as a forged submission would); ``everything`` ticks
        "reject every open request of this requester"."""
        state: dict[str, Any] = {
            Block.REASON.value: {"input": {"type": "plain_text_input", "value": reason}},
            Block.REJECT_ALL.value: {
                "input": {
                    "type": "checkboxes",
                    "selected_options": [{"value": "all"}] if everything else [],
                }
            },
        }
        return await self._submit_modal(View.REJECT, request_id, user, state)

    async def _submit_modal(
        self, callback: View, request_id: int, user: str, state: dict[str, Any]
    ) -> Reply:
        view = self.opened_view(callback.value, request_id)
        metadata = str(view["private_metadata"]) if view else str(request_id)
        payload = self._submission(user, callback.value, metadata, state)
        return await self.post_submission(payload, view)

    def button_value(self, action: Action, request_id: int) -> str:
        """The value of the newest ``action`` button about ``request_id``, or the bare id."""
        for call in reversed(self.slack.calls):
            for block in call.args.get("blocks") or call.args.get("view", {}).get("blocks") or []:
                for element in block.get("elements", []) if isinstance(block, dict) else []:
                    if not isinstance(element, dict):
                        continue
                    value = str(element.get("value", ""))
                    if element.get("action_id") == action.value and (
                        value == str(request_id) or value.startswith(f"{request_id}:")
                    ):
                        return value
        return str(request_id)

    async def paste(self, request_id: int, code: str, user: str) -> Reply:
        """Submit the Paste invitation code form."""
        state = {Block.CODE.value: {"input": {"type": "plain_text_input", "value": code}}}
        return await self._submit_modal(View.PASTE, request_id, user, state)

    async def click(
        self, action: Action, request_id: int | str, user: str, *, channel: str = APPROVAL_CHANNEL
    ) -> str:
        """Click a button; returns the name of the click's response_url.

        Given a request id, the button's value is taken from the newest card or message
        that shows that button for that request, as a person's click would carry it.
        """
        if isinstance(request_id, int):
            request_id = self.button_value(action, request_id)
        name = f"click-{next(self._payloads)}"
        payload = {
            "type": "block_actions",
            "api_app_id": "A1",
            "token": "legacy",
            "team": {"id": "T1", "domain": "acme"},
            "user": {"id": user, "username": user.lower(), "team_id": "T1"},
            "container": {"type": "message", "message_ts": "1", "channel_id": channel},
            "channel": {"id": channel, "name": "approvals"},
            "message": {"type": "message", "ts": "1"},
            "trigger_id": self.slack.trigger_id(),
            "response_url": self.slack.response_url(name),
            "actions": [
                {
                    "type": "button",
                    "action_id": action.value,
                    "block_id": "b",
                    "value": str(request_id),
                    "action_ts": "1",
                }
            ],
        }
        reply = await self.post_payload(payload)
        assert reply.status == 200
        return name

    async def event(self, event: dict[str, Any]) -> Reply:
        """An Events API callback, e.g. ``app_home_opened``."""
        body = {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "token": "legacy",
            "event": event,
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": 1,
        }
        return await self.post(json.dumps(body).encode(), "application/json")

    async def open_home(self, user: str) -> Call:
        """Open the App Home tab as ``user``; returns the published view."""
        await self.event({"type": "app_home_opened", "user": user, "tab": "home"})
        return await self.slack.wait_for(
            "views.publish", lambda call: call.args.get("user_id") == user
        )

    async def suggest(self, query: str, user: str = ALICE, *, site: str = "") -> Reply:
        """What the project select asks for as the person types (``site`` chosen in the
        form's Site select, as Slack sends the form's state along)."""
        view: dict[str, Any] = {"id": "V1", "type": "modal", "callback_id": View.REQUEST.value}
        if site:
            option = {"value": site, "text": {"type": "plain_text", "text": site}}
            selected = {"type": "static_select", "selected_option": option}
            view["state"] = {"values": {"site": {"input": selected}}}
        return await self.post_payload(
            {
                "type": "block_suggestion",
                "api_app_id": "A1",
                "token": "legacy",
                "team": {"id": "T1"},
                "user": {"id": user, "team_id": "T1"},
                "action_id": Action.PROJECT.value,
                "block_id": "project_key",
                "value": query,
                "view": view,
            }
        )

    def _submission(
        self,
        user: str,
        callback_id: str,
        metadata: str,
        state: dict[str, Any],
        view_id: str | None = None,
    ) -> dict[str, Any]:
        """A view_submission payload. Each comes from a view of its own (Slack closes a
        view once submitted) unless ``view_id`` names one: the same form sent again."""
        return {
            "type": "view_submission",
            "api_app_id": "A1",
            "token": "legacy",
            "team": {"id": "T1", "domain": "acme"},
            "user": {"id": user, "username": user.lower(), "team_id": "T1"},
            "trigger_id": self.slack.trigger_id(),
            "view": {
                "id": view_id or f"V{next(self._payloads)}",
                "type": "modal",
                "callback_id": callback_id,
                "hash": "h",
                "private_metadata": metadata,
                "state": {"values": state},
            },
            "response_urls": [],
        }

    # --- what people see ---------------------------------------------------------------

    async def request_id(self, index: int = 0) -> int:
        """The request id on the ``index``-th approval card posted."""

        def cards() -> list[Call]:
            return [
                c
                for c in self.slack.calls_to("chat.postMessage")
                if c.args.get("channel") == APPROVAL_CHANNEL and "thread_ts" not in c.args
            ]

        await self.slack.wait_for("chat.postMessage", lambda _call: len(cards()) > index)
        return int(cards()[index].args["blocks"][0]["text"]["text"].rsplit("#", 1)[1])

    async def card(self, predicate_text: str) -> Call:
        """The first card post or update whose notification text contains ``predicate_text``."""
        return await self.slack.wait_for(
            "chat.update", lambda call: predicate_text in call.args.get("text", "")
        )

    async def dm(self, user: str, fragment: str) -> Call:
        """The first DM to ``user`` containing ``fragment`` in its text or blocks."""
        channel = "D" + user
        return await self.slack.wait_for(
            "chat.postMessage",
            lambda call: call.args.get("channel") == channel and fragment in json.dumps(call.args),
        )

    async def private_reply(self, response_name: str) -> Call:
        return await self.slack.wait_for(f"response_url:{response_name}")


@dataclass(kw_only=True)
class Harness(SlackSide):
    """The bot running in this process, and the fakes around it."""

    runtime: Runtime

    def site(self, name: str = DEFAULT_SITE) -> Site:
        """The running bot's site ``name``: its caches, health and back-off."""
        return self.runtime.services.sites[name]

    async def repository_request(self, request_id: int) -> ConnectionRequest:
        """The request as stored now."""
        request = await RequestRepository(make_sessionmaker(self.runtime.engine)).get(request_id)
        assert request is not None
        return request

    async def tick(self) -> bool:
        """One tick of the life-cycle jobs, then what it left in the outbox sent."""
        polled = await self.runtime.jobs.tick()
        await self.runtime.services.outbox.send_due()
        return polled

    async def settle(self) -> None:
        """Wait until every listener has finished its work after the ack, and the
        outbox has sent what they left in it."""
        assert await self.runtime.settle(within=5) == 0

    async def invited(self, **overrides: str) -> int:
        """A request approved by Bob, its code delivered; returns its id."""
        count = len(
            [
                c
                for c in self.slack.calls_to("chat.postMessage")
                if c.args.get("channel") == APPROVAL_CHANNEL and "thread_ts" not in c.args
            ]
        )
        assert (await self.submit_request(**overrides)).body == {}
        await self.settle()
        request_id = await self.request_id(count)
        await self.click(Action.APPROVE, request_id, BOB)
        await self.settle()
        return request_id


def settings_from_file(
    path: Path, slack: FakeSlack, database_url: str, *, approvers: str
) -> Settings:
    """The e2e bot's settings with its sites (and routes) in ``path``, an
    ``exalate-bot.toml`` already written: HTTP mode, loopback, generous limits."""
    path.chmod(0o600)
    return load_settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        exalate_config=str(path),
        database_url=database_url,
        exalate_secret_key=None if sqlite_file(database_url) else SECRET_KEY,
        exalate_approval_channel=APPROVAL_CHANNEL,
        exalate_approvers=approvers,
        exalate_create_timeout=2.0,
        jira_retries=0,
        exalate_max_open_per_requester=1000,
        exalate_max_submissions_per_hour=1000,
    )


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, slack: FakeSlack, simulator: Simulator, clock: Callable[[], datetime]
) -> AsyncIterator[Harness]:
    """The bot of ``settings`` serving HTTP on loopback until the block ends, and the
    harness that speaks to it (``simulator`` is the node it drives)."""
    runtime = await Runtime.start(settings, http_mode=True, clock=clock)
    try:
        async with (
            TestServer(runtime.web_app(), host="127.0.0.1") as server,
            aiohttp.ClientSession() as http,
        ):
            url = str(server.make_url("/slack/events"))
            yield Harness(slack, simulator, url, http, runtime=runtime)
    finally:
        await runtime.close()


@contextlib.asynccontextmanager
async def http_mode(
    settings: Settings, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> AsyncIterator[int]:
    """HTTP mode as ``run --http`` serves it (its door, its connection cap), in this
    process, until the block ends; its port."""
    port, stop, started = free_port(), asyncio.Event(), asyncio.Event()
    serving_task = asyncio.create_task(
        serve_http(
            settings, "127.0.0.1", port, stop=stop, started=started, max_connections=max_connections
        )
    )
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({serving_task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    assert started.is_set(), serving_task.result()
    try:
        yield port
    finally:
        stop.set()
        await serving_task
