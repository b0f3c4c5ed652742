"""The emulator refuses what Slack refuses, with Slack's own error strings.

Each test makes a call real Slack would refuse, through the real ``AsyncWebClient`` over
loopback, and expects Slack's answer. A fake that accepted these would let the bot's
tests pass where production breaks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack_emulator import ADDED_SCOPES, DEFAULT_SCOPES, MANIFEST_SCOPES, FakeSlack

MANIFEST = Path(__file__).parents[2] / "manifest.yml"
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
INPUT = {
    "type": "input",
    "block_id": "reason",
    "label": {"type": "plain_text", "text": "Reason"},
    "element": {"type": "plain_text_input", "action_id": "input"},
}


def modal(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Reject"}}
    return view | {"blocks": list(blocks) or [SECTION], "submit": _text("Send")} | extra


def _text(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="clock")
def fixture_clock() -> Clock:
    return Clock()


@pytest.fixture(name="fake")
async def fixture_fake(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(users={"U1", "U2"}, channels={"C1"}, clock=clock) as fake:
        yield fake


@pytest.fixture(name="client")
def fixture_client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.api_url)


async def refusal(call: Any) -> dict[str, Any]:
    """The body of Slack's ``ok: false`` answer to ``call``, which must be refused."""
    with pytest.raises(SlackApiError) as raised:
        await call
    assert raised.value.response.status_code == 200
    return dict(raised.value.response.data)


class TestBlockKit:
    async def test_over_long_section_text_is_invalid_blocks(self, client: AsyncWebClient) -> None:
        """A 3001-character section text: invalid_blocks, with the place it went wrong."""
        block = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
        body = await refusal(client.chat_postMessage(channel="C1", text="t", blocks=[block]))
        assert body["error"] == "invalid_blocks"
        assert "json-pointer:/blocks/0" in body["response_metadata"]["messages"][0]

    async def test_fifty_one_blocks_are_too_many_for_a_message(
        self, client: AsyncWebClient
    ) -> None:
        body = await refusal(client.chat_postMessage(channel="C1", text="t", blocks=[SECTION] * 51))
        assert body["error"] == "invalid_blocks"
        assert body["response_metadata"]["messages"] == [
            "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
        ]

    @pytest.mark.parametrize(
        ("block", "pointer"),
        [
            ({"type": "sektion", "text": _text("x")}, "/blocks/0/type"),
            (SECTION | {"colour": "red"}, "/blocks/0/colour"),
            ({"type": "header", "text": {"type": "mrkdwn", "text": "x"}}, "/blocks/0/text/type"),
            ({"type": "section", "text": {"type": "mrkdwn", "text": ""}}, "/blocks/0/text/text"),
            ({"type": "context", "elements": [{"type": "divider"}]}, "/blocks/0/elements/0/type"),
            (
                {
                    "type": "actions",
                    "elements": [{"type": "button", "text": _text("x" * 76), "action_id": "a"}],
                },
                "/blocks/0",
            ),
        ],
    )
    async def test_what_the_models_let_through_is_refused_too(
        self, client: AsyncWebClient, block: dict[str, Any], pointer: str
    ) -> None:
        """Unknown types and properties, wrong text kinds, empty and over-long texts."""
        body = await refusal(client.chat_postMessage(channel="C1", text="t", blocks=[block]))
        assert body["error"] == "invalid_blocks"
        assert any(f"[json-pointer:{pointer}]" in m for m in body["response_metadata"]["messages"])

    @pytest.mark.parametrize(
        ("block", "message"),
        [
            ({"type": "section", "text": "hi"}, "must provide an object"),
            (
                {"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]},
                "must be less than 2001 characters",
            ),
            (
                {
                    "type": "actions",
                    "elements": [{"type": "buton", "text": _text("x"), "action_id": "a"}],
                },
                "must provide a valid object",
            ),
        ],
    )
    async def test_shapes_the_models_coerce_or_skip_are_refused(
        self, client: AsyncWebClient, block: dict[str, Any], message: str
    ) -> None:
        """Strings where objects belong, long fields, misspelt element types."""
        body = await refusal(client.chat_postMessage(channel="C1", text="t", blocks=[block]))
        assert any(message in m for m in body["response_metadata"]["messages"])

    async def test_chat_update_checks_blocks_too(self, client: AsyncWebClient) -> None:
        posted = await client.chat_postMessage(channel="C1", text="t", blocks=[SECTION])
        block = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
        body = await refusal(
            client.chat_update(channel="C1", ts=posted["ts"], text="t", blocks=[block])
        )
        assert body["error"] == "invalid_blocks"

    @pytest.mark.parametrize(
        ("view", "message"),
        [
            (modal(INPUT, submit=None), "must define `submit` to use an `input` block"),
            (modal(private_metadata="x" * 3001), "must be less than 3001 characters"),
            (modal(*[SECTION] * 101), "no more than 100 items allowed"),
            (modal(title=_text("A title longer than 24 chars")), "title must be between 1 and 24"),
            (modal(title=None), "missing required field: title"),
            ({"type": "home", "blocks": [SECTION]}, "must be modal"),
            (
                modal(
                    {
                        "type": "input",
                        "block_id": "p",
                        "label": _text("Project"),
                        "element": {
                            "type": "static_select",
                            "action_id": "a",
                            "options": [{"text": _text("SUP"), "value": "v" * 151}],
                        },
                    }
                ),
                "value attribute cannot exceed 150 characters",
            ),
        ],
    )
    async def test_a_bad_view_is_invalid_arguments(
        self, fake: FakeSlack, client: AsyncWebClient, view: dict[str, Any], message: str
    ) -> None:
        """Modal rules: submit with inputs, metadata and block limits, option values."""
        view = {k: v for k, v in view.items() if v is not None}
        body = await refusal(client.views_open(trigger_id=fake.trigger_id(), view=view))
        assert body["error"] == "invalid_arguments"
        assert any(message in m for m in body["response_metadata"]["messages"])

    async def test_a_view_sent_again_is_judged_by_what_it_says(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """Verdicts are remembered per view's content, not per call: the same view is
        accepted again, and the same view changed by one character is refused."""
        view = modal(INPUT)
        for _ in range(2):
            await client.views_open(trigger_id=fake.trigger_id(), view=view)
        view["title"] = _text("")
        body = await refusal(client.views_open(trigger_id=fake.trigger_id(), view=view))
        assert body["error"] == "invalid_arguments"
        del view["title"]
        body = await refusal(client.views_open(trigger_id=fake.trigger_id(), view=view))
        assert "missing required field: title" in body["response_metadata"]["messages"][0]


class TestHomeTab:
    async def test_a_modal_cannot_be_published(self, client: AsyncWebClient) -> None:
        body = await refusal(client.views_publish(user_id="U1", view=modal()))
        assert body["error"] == "invalid_arguments"

    async def test_publishing_for_someone_who_does_not_exist(self, client: AsyncWebClient) -> None:
        view = {"type": "home", "blocks": [SECTION]}
        body = await refusal(client.views_publish(user_id="U404", view=view))
        assert body["error"] == "user_not_found"


class TestTriggers:
    async def test_unknown_trigger_is_invalid(self, client: AsyncWebClient) -> None:
        body = await refusal(client.views_open(trigger_id="1.2.3", view=modal()))
        assert body["error"] == "invalid_trigger_id"

    async def test_trigger_older_than_three_seconds_has_expired(
        self, fake: FakeSlack, client: AsyncWebClient, clock: Clock
    ) -> None:
        trigger = fake.trigger_id()
        clock.now += 3.01
        body = await refusal(client.views_open(trigger_id=trigger, view=modal()))
        assert body["error"] == "expired_trigger_id"

    async def test_trigger_works_once(self, fake: FakeSlack, client: AsyncWebClient) -> None:
        trigger = fake.trigger_id()
        await client.views_open(trigger_id=trigger, view=modal())
        body = await refusal(client.views_open(trigger_id=trigger, view=modal()))
        assert body["error"] == "exchanged_trigger_id"


class TestMethods:
    async def test_unknown_method(self, client: AsyncWebClient) -> None:
        """A misspelt method: 200 with unknown_method and the method echoed."""
        body = await refusal(client.api_call("chat.postMesage", json={"channel": "C1"}))
        assert body == {"ok": False, "error": "unknown_method", "req_method": "chat.postMesage"}

    async def test_views_publish_needs_a_user(self, client: AsyncWebClient) -> None:
        view = {"type": "home", "blocks": [SECTION]}
        body = await refusal(client.api_call("views.publish", json={"view": view}))
        assert body["error"] == "invalid_arguments"

    async def test_posting_where_the_bot_was_not_invited(self, client: AsyncWebClient) -> None:
        """A public channel says not_in_channel; a private one or a DM not opened, not found."""
        assert (await refusal(client.chat_postMessage(channel="C9", text="t")))["error"] == (
            "not_in_channel"
        )
        for channel in ("G9", "DU1"):
            body = await refusal(client.chat_postMessage(channel=channel, text="t"))
            assert body["error"] == "channel_not_found"

    async def test_dm_with_an_unknown_or_deactivated_person(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """A new DM with a deactivated person is refused; one already open still takes
        posts, as Slack's does (python-slack-sdk#1156), and nobody reads them."""
        assert (await refusal(client.conversations_open(users="U404")))["error"] == (
            "user_not_found"
        )
        opened = await client.conversations_open(users="U2")
        fake.deactivate("U2")
        assert (await refusal(client.conversations_open(users="U2")))["error"] == "user_disabled"
        posted = await client.chat_postMessage(channel=opened["channel"]["id"], text="t")
        assert list(fake.unread) == [(posted["channel"], posted["ts"])]

    async def test_conversations_open_needs_users(self, client: AsyncWebClient) -> None:
        body = await refusal(client.api_call("conversations.open", json={}))
        assert body["error"] == "users_list_not_supplied"

    async def test_token_types(self, fake: FakeSlack, client: AsyncWebClient) -> None:
        """An app-level token is for apps.connections.open only, and only it may call it."""
        assert (await refusal(client.apps_connections_open(app_token="xoxb-test")))["error"] == (
            "not_allowed_token_type"
        )
        app = AsyncWebClient(token="xapp-test", base_url=fake.api_url)
        assert (await refusal(app.auth_test()))["error"] == "not_allowed_token_type"

    async def test_updating_a_message_that_is_not_there(self, client: AsyncWebClient) -> None:
        body = await refusal(client.chat_update(channel="C1", ts="1.000100", text="t"))
        assert body["error"] == "message_not_found"

    async def test_message_needs_text_or_blocks(self, client: AsyncWebClient) -> None:
        body = await refusal(client.api_call("chat.postMessage", json={"channel": "C1"}))
        assert body["error"] == "no_text"


class TestScopes:
    def test_manifest_scopes_are_the_manifests(self) -> None:
        """MANIFEST_SCOPES is what manifest.yml asks for, and the emulator grants exactly
        them: a token installed from the manifest."""
        text = MANIFEST.read_text()
        listed = re.search(r"^\s+bot:\n((?:\s+- \S+.*\n)+)", text, re.MULTILINE)
        assert listed is not None
        scopes = re.findall(r"- (\S+)", listed.group(1))
        assert sorted(scopes) == sorted(MANIFEST_SCOPES)
        assert set(DEFAULT_SCOPES) == set(MANIFEST_SCOPES)
        assert set(ADDED_SCOPES) <= set(MANIFEST_SCOPES)

    async def test_a_method_beyond_the_scopes_is_missing_scope(self) -> None:
        """conversations.info on a public channel needs channels:read: a token installed
        from the previous manifest, without it, is refused, naming it."""
        previous = [s for s in MANIFEST_SCOPES if s not in ADDED_SCOPES]
        async with FakeSlack(channels={"C1"}, scopes=previous) as fake:
            client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
            body = await refusal(client.conversations_info(channel="C1"))
        assert body == {
            "ok": False,
            "error": "missing_scope",
            "needed": "channels:read",
            "provided": ",".join(sorted(previous)),
        }

    async def test_every_answer_carries_the_granted_scopes(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        ok = await client.auth_test()
        with pytest.raises(SlackApiError) as refused:
            await client.chat_postMessage(channel="C9", text="t")
        for response in (ok, refused.value.response):
            assert response.headers["x-oauth-scopes"] == ",".join(sorted(DEFAULT_SCOPES))

    async def test_the_scope_a_method_accepts_is_named(self, client: AsyncWebClient) -> None:
        response = await client.chat_postMessage(channel="C1", text="t")
        assert response.headers["x-accepted-oauth-scopes"] == "chat:write"

    async def test_a_granted_scope_opens_the_method(self) -> None:
        async with FakeSlack(
            channels={"C1"}, scopes=["chat:write"], extra_scopes={"channels:read"}
        ) as fake:
            client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
            info = await client.conversations_info(channel="C1")
        assert info["channel"]["is_member"] is True


class TestResponseUrl:
    async def _post(self, url: str, text: str = "done") -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as http, http.post(url, json={"text": text}) as r:
            return r.status, await r.json()

    async def test_five_uses_then_refused(self, fake: FakeSlack) -> None:
        url = fake.response_url("command")
        for _ in range(5):
            assert (await self._post(url))[0] == 200
        assert await self._post(url) == (404, {"ok": False, "error": "used_url"})

    async def test_expires_after_thirty_minutes(self, fake: FakeSlack, clock: Clock) -> None:
        url = fake.response_url("command")
        clock.now += 30 * 60 + 1
        assert await self._post(url) == (404, {"ok": False, "error": "Expired url"})

    async def test_a_url_slack_never_issued_is_refused(self, fake: FakeSlack) -> None:
        assert (await self._post(f"{fake.base_url}/response/forged"))[0] == 404

    async def test_blocks_posted_there_are_checked(self, fake: FakeSlack) -> None:
        block = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
        async with (
            aiohttp.ClientSession() as http,
            http.post(fake.response_url("r"), json={"blocks": [block]}) as response,
        ):
            assert response.status == 400
            assert (await response.json())["error"] == "invalid_blocks"


class TestAckDeadline:
    def test_a_late_ack_fails_the_test(self, fake: FakeSlack) -> None:
        """What the harness and push_envelope apply to every answer."""
        fake.check_ack(2.99, {})
        with pytest.raises(AssertionError, match=r"acked after 3\.01s"):
            fake.check_ack(3.01, {})

    def test_an_ack_slack_would_refuse_fails_the_test(self, fake: FakeSlack) -> None:
        with pytest.raises(AssertionError, match="Slack would refuse this ack"):
            fake.check_ack(0.1, {"blocks": [{"type": "sektion"}]})

    async def test_socket_mode_acks_are_timed_from_the_envelope(self) -> None:
        """Over Socket Mode an ack is timed from the envelope's sending: a listener that
        acks at once passes, one that acks after the deadline fails the test."""
        async with FakeSlack(ack_deadline=0.3) as fake:
            app = AsyncApp(client=AsyncWebClient(token="xoxb-test", base_url=fake.api_url))

            @app.command("/ping")
            async def ping(ack: AsyncAck, command: dict[str, Any]) -> None:
                if command["text"] == "slow":
                    await asyncio.sleep(0.5)  # slow work before the ack: what is measured
                await ack("pong")

            handler = AsyncSocketModeHandler(app, app_token="xapp-test")
            await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in Bolt
            try:
                payload = {"command": "/ping", "text": "", "user_id": "U1", "team_id": "T1"}
                assert (await fake.push_envelope("slash_commands", payload))["payload"]
                with pytest.raises(AssertionError, match=r"acked after \d+\.\d+s"):
                    await fake.push_envelope("slash_commands", payload | {"text": "slow"})
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]  # untyped in Bolt


class TestEmulatorFaults:
    async def test_an_emulator_bug_fails_the_test_at_close(self) -> None:
        """A fault inside the emulator answers 500 and fails the test when it closes,
        instead of passing as if Slack had refused."""
        fake = FakeSlack()
        await fake.start()
        fake.workspace.messages = None  # type: ignore[assignment]  # break it on purpose
        client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
        fake.member_of.add("C1")
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel="C1", text="t")
        with pytest.raises(AssertionError, match="the Slack emulator failed"):
            await fake.close()
