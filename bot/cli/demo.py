"""``exalate-bot demo``: the whole flow on this machine, with no Slack and no Jira.

The bot runs for real in HTTP mode against the Slack emulator and the Exalate simulator,
with a throw-away database. A script plays the people: Alice asks for a connection, Bob
approves it, Alice receives the invitation code, the partner accepts, Bob asks for the
status. What each of them would see in Slack is printed as text.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.config import load_settings
from bot.runtime.app import Runtime
from bot.sandbox.exalate_simulator import Simulator, serve
from bot.sandbox.slack_emulator import Call, FakeSlack
from handlers.ids import Action, View

ALICE, BOB = "U0ALICE", "U0BOB"
NAMES = {ALICE: "Alice", BOB: "Bob"}
APPROVALS = "C0APPROVALS"
FORM = {
    "local_short_name": "acme",
    "remote_short_name": "partner",
    "connection_name": "",
    "description": "Support tickets with Partner Co",
}


CHANNELS = {APPROVALS: "approvals"}
# The shortcodes the bot's messages use; any other is shown as written.
EMOJI = {
    "bell": "🔔",
    "double_vertical_bar": "⏸",
    "gear": "⚙",
    "ghost": "👻",
    "grey_question": "❔",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "key": "🔑",
    "link": "🔗",
    "no_entry": "⛔",
    "tada": "🎉",
    "warning": "⚠",
    "wastebasket": "🗑",
    "white_check_mark": "✅",
    "wrench": "🔧",
    "x": "❌",
}
BOLD, RESET = "\x1b[1m", "\x1b[0m"
_CODE = re.compile(r"(```.*?```|`[^`\n]+`)", re.DOTALL)
_REFERENCE = re.compile(r"<([@#!]?)([^<>|]+)(?:\|([^<>]*))?>")
_SHORTCODE = re.compile(r":([a-z0-9_+-]+):")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")


def terminal_text(text: str, *, styled: bool) -> str:
    """mrkdwn as Slack shows it, for a terminal: people and channels by name, emoji as
    emoji, entities decoded, and bold in ANSI if ``styled`` (plain in a file or pipe,
    where escape codes would be noise). Code is left as it is, backticks included."""
    parts = _CODE.split(text)
    return "".join(
        _unescape(part) if index % 2 else _inline(part, styled) for index, part in enumerate(parts)
    )


def _inline(text: str, styled: bool) -> str:
    text = _REFERENCE.sub(_reference, text)
    text = _BOLD.sub(lambda bold: f"{BOLD}{bold[1]}{RESET}" if styled else bold[1], text)
    return _unescape(_emoji(text))


def _reference(match: re.Match[str]) -> str:
    """``<@U…>``, ``<#C…>``, ``<!here>``, ``<!subteam^S…|@team>``, ``<url|label>``."""
    sigil, target, label = match[1], match[2], match[3]
    if sigil == "@":
        return "@" + (label or NAMES.get(target, target))
    if sigil == "#":
        return "#" + (label or CHANNELS.get(target, target))
    if sigil == "!":
        return label or "@" + target.split("^")[-1]
    return f"{label} ({target})" if label else target


def _emoji(text: str) -> str:
    return _SHORTCODE.sub(lambda code: EMOJI.get(code[1], code[0]), text)


def _unescape(text: str) -> str:
    """Slack's three entities; ``&amp;`` last, so ``&amp;lt;`` stays ``&lt;``."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _shown(text: dict[str, Any] | str, styled: bool) -> str:
    """A text object as a person reads it: mrkdwn rendered, plain text with its emoji."""
    if isinstance(text, str) or text.get("type") == "mrkdwn":
        return terminal_text(text if isinstance(text, str) else text["text"], styled=styled)
    return _emoji(text["text"])


def render(blocks: list[dict[str, Any]], *, styled: bool = False) -> list[str]:
    """Block Kit as the lines a person reads; buttons in brackets, people by name."""
    lines: list[str] = []
    for block in blocks:
        if text := block.get("text"):
            lines.append(_shown(text, styled))
        if label := block.get("label"):
            initial = block.get("element", {}).get("initial_value") or ""
            chosen = (block.get("element", {}).get("initial_option") or {}).get("value", "")
            lines.append(f"{_shown(label, styled)}: [{initial or chosen}]")
        lines += [_shown(field, styled).replace("\n", ": ") for field in block.get("fields", [])]
        for element in block.get("elements", []):
            if element.get("type") == "button":
                lines.append(f"[{_shown(element['text'], styled)}]")
            elif "text" in element:
                lines.append(_shown(element, styled))
    return lines


class People:
    """Alice and Bob: they act through signed Slack requests and read what the bot sent."""

    def __init__(
        self,
        url: str,
        slack: FakeSlack,
        secret: str,
        http: aiohttp.ClientSession,
        say: Callable[[str], None],
        styled: bool,
    ) -> None:
        self._url = url
        self._slack = slack
        self._secret = secret
        self._http = http
        self.say = say
        self.styled = styled
        self._seen = 0
        self._payloads = 0

    def _next_payload(self) -> int:
        """Each command and click carries a response_url of its own, as in Slack."""
        self._payloads += 1
        return self._payloads

    async def command(self, user: str, text: str) -> Any:
        """``/exalate <text>``; returns the bot's immediate answer."""
        self.say(f"\n>>> {NAMES[user]} types: /exalate {text}")
        return await self._post(
            {
                "command": "/exalate",
                "text": text,
                "user_id": user,
                "team_id": "T1",
                "channel_id": "C0GENERAL",
                "trigger_id": self._slack.trigger_id(),
                "api_app_id": "A1",
                "response_url": self._slack.response_url(f"command-{self._next_payload()}"),
            }
        )

    async def submit_form(self, user: str) -> None:
        """Fill in the request form and press Request."""
        self.say(f"\n>>> {NAMES[user]} fills in the form and presses Request")
        values: dict[str, Any] = {
            key: {"input": {"type": "plain_text_input", "value": value}}
            for key, value in FORM.items()
        }
        values["project_key"] = {
            Action.PROJECT.value: {"type": "static_select", "selected_option": {"value": "SUP"}}
        }
        await self._payload(
            {
                "type": "view_submission",
                "team": {"id": "T1"},
                "api_app_id": "A1",
                "user": {"id": user, "team_id": "T1"},
                "trigger_id": self._slack.trigger_id(),
                "view": {
                    "id": "V1",
                    "type": "modal",
                    "callback_id": View.REQUEST.value,
                    "private_metadata": "",
                    "state": {"values": values},
                },
            }
        )

    async def click(self, user: str, action: Action, label: str) -> None:
        """Press the newest ``action`` button the bot drew."""
        self.say(f"\n>>> {NAMES[user]} presses {label}")
        await self._payload(
            {
                "type": "block_actions",
                "team": {"id": "T1"},
                "api_app_id": "A1",
                "user": {"id": user, "team_id": "T1"},
                "trigger_id": self._slack.trigger_id(),
                "channel": {"id": APPROVALS},
                "message": {"ts": "1"},
                "container": {"type": "message", "channel_id": APPROVALS},
                "response_url": self._slack.response_url(f"click-{self._next_payload()}"),
                "actions": [
                    {
                        "type": "button",
                        "action_id": action.value,
                        "block_id": "b",
                        "value": self._newest_button(action),
                        "action_ts": "1",
                    }
                ],
            }
        )

    def render(self, blocks: list[dict[str, Any]]) -> list[str]:
        return render(blocks, styled=self.styled)

    def show(self, title: str, lines: list[str]) -> None:
        self.say(f"\n── {title} " + "─" * max(0, 60 - len(title)))
        for line in lines:
            self.say("   " + line.replace("\n", "\n   "))

    def show_new(self) -> None:
        """Print every message, card update and form the bot produced since last time."""
        for call in self._slack.calls[self._seen :]:
            self._show(call)
        self._seen = len(self._slack.calls)

    def _show(self, call: Call) -> None:
        channel = str(call.args.get("channel", ""))
        if call.method == "views.open":
            self.show("a form opens", self.render(call.args["view"]["blocks"]))
        elif call.method == "chat.postMessage" and "thread_ts" in call.args:
            self.show(
                "#approvals, a reply in the card's thread",
                self.render([{"text": {"type": "mrkdwn", "text": call.args["text"]}}]),
            )
        elif call.method in ("chat.postMessage", "chat.update") and "blocks" in call.args:
            if channel.startswith("D"):
                title = f"{NAMES.get(channel[1:], channel[1:])}'s DM with the bot"
                if call.method == "chat.update":
                    title += ", a message edited"
            else:
                title = "#approvals, " + (
                    "the card, updated" if call.method == "chat.update" else "a new card"
                )
            self.show(title, self.render(call.args["blocks"]))

    def _newest_button(self, action: Action) -> str:
        for call in reversed(self._slack.calls):
            for block in call.args.get("blocks") or []:
                for element in block.get("elements", []):
                    if element.get("action_id") == action.value:
                        return str(element["value"])
        raise RuntimeError(f"the bot drew no {action.value} button")

    async def _payload(self, payload: dict[str, Any]) -> Any:
        return await self._post({"payload": json.dumps(payload)})

    async def _post(self, fields: dict[str, str]) -> Any:
        body = urllib.parse.urlencode(fields).encode()
        stamp = str(int(time.time()))
        signature = SignatureVerifier(self._secret).generate_signature(timestamp=stamp, body=body)
        headers = {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature or "",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        async with self._http.post(self._url, data=body, headers=headers) as response:
            text = await response.text()
            return json.loads(text) if response.content_type == "application/json" else text


@asynccontextmanager
async def _bot(folder: str) -> AsyncIterator[tuple[Runtime, str, FakeSlack, Simulator, str]]:
    """The simulator, the Slack emulator and the bot in HTTP mode, all on loopback."""
    secret = secrets.token_hex(16)
    simulator = Simulator()
    jira = await serve(simulator, "127.0.0.1", 0, access_log=False)
    async with FakeSlack(users=NAMES, channels={APPROVALS}) as slack:
        settings = load_settings(
            slack_bot_token="xoxb-demo",  # noqa: S106 - the emulator's, not a secret
            slack_signing_secret=secret,
            slack_api_url=slack.api_url,
            jira_url=f"http://127.0.0.1:{jira.addresses[0][1]}",
            jira_token="demo-token",  # noqa: S106 - the simulator accepts any token
            database_url=f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}",
            exalate_approval_channel=APPROVALS,
            exalate_approvers=BOB,
            exalate_local_short_name="acme",
            exalate_initiation="api",  # whatever this machine's environment says
            jira_retries=0,
        )
        runtime = await Runtime.start(settings, http_mode=True)
        runner = web.AppRunner(runtime.web_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        try:
            yield runtime, url, slack, simulator, secret
        finally:
            await runner.cleanup()
            await runtime.close()
    await jira.cleanup()


async def run(say: Callable[[str], None] = print, styled: bool | None = None) -> int:
    """The scripted conversation; returns the exit code. Bold is drawn in ANSI when
    ``styled``, by default when standard output is a terminal."""
    styled = sys.stdout.isatty() if styled is None else styled
    with tempfile.TemporaryDirectory() as folder:
        async with (
            _bot(folder) as (runtime, url, slack, simulator, secret),
            aiohttp.ClientSession() as http,
        ):
            people = People(url, slack, secret, http, say, styled)
            settle = runtime.settle
            await next(iter(runtime.services.sites)).projects.get(wait=5)

            await people.command(ALICE, "connect remote=partner project=SUP")
            await settle(5)
            people.show_new()

            await people.submit_form(ALICE)
            await settle(5)
            people.show_new()

            await people.click(BOB, Action.APPROVE, "Approve on the card, and confirms")
            await settle(10)
            people.show_new()

            say("\n>>> The partner pastes the code in their Exalate: Accept invitation")
            simulator.accept("acme_to_partner")
            await runtime.jobs.tick()
            await settle(5)
            people.show_new()

            answer = await people.command(ALICE, "status acme_to_partner")
            people.show("only Alice sees this answer", people.render(answer["blocks"]))
    say("\nThat was the whole flow. Run it against Slack with: exalate-bot run --simulated-jira")
    return 0
