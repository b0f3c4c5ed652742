"""The fake Slack behaves like Slack as far as slack_sdk and Bolt can tell.

These tests drive the fake with the real clients (``AsyncWebClient``,
``AsyncWebhookClient``, Bolt's ``AsyncSocketModeHandler``) over real sockets, so the
end-to-end tests that build on it can trust what it records and answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.sandbox.slack_emulator import Call, FakeSlack

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
MODAL = {
    "type": "modal",
    "callback_id": "request",
    "title": {"type": "plain_text", "text": "Request"},
    "blocks": BLOCKS,
}
HOME = {"type": "home", "blocks": BLOCKS}


@pytest.fixture(autouse=True)
def fixture_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk routes even loopback requests through HTTP(S)_PROXY, ignoring NO_PROXY."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(name="fake")
async def fixture_fake() -> AsyncIterator[FakeSlack]:
    """A started fake with one user group, one more person and two channels with the bot."""
    async with FakeSlack(
        usergroups={"S1": ["U1", "U2"]}, users={"U123"}, channels={"C1", "C2"}
    ) as fake:
        yield fake


@pytest.fixture(name="client")
def fixture_client(fake: FakeSlack) -> AsyncWebClient:
    """The real async Web API client, pointed at the fake."""
    return AsyncWebClient(token="xoxb-test", base_url=fake.api_url)


def slash_command(fake: FakeSlack, text: str = "") -> dict[str, Any]:
    """A /ping payload shaped like Slack's (Bolt routes on ``command``)."""
    return {
        "token": "legacy-verification-token",
        "team_id": "T1",
        "team_domain": "exalate-test",
        "channel_id": "C1",
        "channel_name": "general",
        "user_id": "U1",
        "user_name": "alice",
        "command": "/ping",
        "text": text,
        "api_app_id": "A1",
        "is_enterprise_install": "false",
        "response_url": fake.response_url(),
        "trigger_id": fake.trigger_id(),
    }


class TestWebApi:
    """Web API methods answer like Slack and are recorded with decoded arguments."""

    async def test_auth_test_identifies_the_bot(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """auth.test answers the bot identity Bolt's single-team authorization needs."""
        response = await client.auth_test()

        assert response["user_id"] == "UBOT"
        assert response["bot_id"] == "B1"
        assert response["team_id"] == "T1"
        assert fake.calls == [Call(method="auth.test", args={}, token="xoxb-test")]

    async def test_post_message_is_recorded_with_blocks_as_objects(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """chat.postMessage answers channel and ts, and records the blocks as Python objects."""
        response = await client.chat_postMessage(channel="C1", text="hi", blocks=BLOCKS)

        assert response["channel"] == "C1"
        assert response["message"]["text"] == "hi"
        assert fake.calls_to("chat.postMessage") == [
            Call(
                method="chat.postMessage",
                args={"channel": "C1", "text": "hi", "blocks": BLOCKS},
                token="xoxb-test",
            )
        ]

    async def test_message_timestamps_increase(self, client: AsyncWebClient) -> None:
        """Each message gets a new, larger ts, so tests can tell messages apart."""
        first = await client.chat_postMessage(channel="C1", text="one")
        second = await client.chat_postMessage(channel="C1", text="two")

        assert first["ts"] == "1700000000.000100"
        assert float(second["ts"]) > float(first["ts"])

    async def test_form_encoded_json_text_is_decoded(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """Blocks sent as JSON text in a form are recorded as objects, not strings."""
        await client.api_call(
            "chat.postMessage", data={"channel": "C1", "blocks": json.dumps(BLOCKS)}
        )

        assert fake.calls_to("chat.postMessage")[0].args == {"channel": "C1", "blocks": BLOCKS}

    async def test_update_echoes_channel_and_ts(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """chat.update answers with the message it was asked to change, and changes it."""
        posted = await client.chat_postMessage(channel="C1", text="working")
        response = await client.chat_update(channel="C1", ts=posted["ts"], text="done")

        assert (response["channel"], response["ts"]) == ("C1", posted["ts"])
        assert fake.calls_to("chat.update")[0].args["text"] == "done"
        assert fake.messages[("C1", posted["ts"])]["text"] == "done"

    async def test_post_ephemeral_answers_message_ts(self, client: AsyncWebClient) -> None:
        """chat.postEphemeral answers message_ts, as Slack does, not ts."""
        response = await client.chat_postEphemeral(channel="C1", user="U1", text="psst")

        assert response["message_ts"]

    async def test_conversations_open_answers_a_dm_channel(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """conversations.open (sent as query parameters) opens D<user>."""
        response = await client.conversations_open(users="U123")

        assert response["channel"]["id"] == "DU123"
        assert fake.calls_to("conversations.open")[0].args == {"users": "U123"}

    async def test_views_open_answers_the_view_with_an_id(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """views.open (sent as JSON) records the view as an object and answers id and hash."""
        trigger = fake.trigger_id()
        response = await client.views_open(trigger_id=trigger, view=MODAL)

        assert response["view"]["id"].startswith("V")
        assert response["view"]["hash"]
        assert response["view"]["callback_id"] == "request"
        assert fake.calls_to("views.open")[0].args == {"trigger_id": trigger, "view": MODAL}

    async def test_views_update_keeps_the_view_id(self, client: AsyncWebClient) -> None:
        """views.update answers the id it was given, so follow-up updates can chain."""
        response = await client.views_update(view_id="V9", view=MODAL)

        assert response["view"]["id"] == "V9"

    async def test_usergroup_members_come_from_the_constructor(
        self, client: AsyncWebClient
    ) -> None:
        """usergroups.users.list (sent as GET) lists the configured members."""
        response = await client.usergroups_users_list(usergroup="S1")

        assert response["users"] == ["U1", "U2"]

    async def test_unknown_usergroup_is_an_error(self, client: AsyncWebClient) -> None:
        """An unconfigured group fails like Slack's no_such_subteam."""
        with pytest.raises(SlackApiError) as raised:
            await client.usergroups_users_list(usergroup="S404")

        assert raised.value.response["error"] == "no_such_subteam"

    async def test_missing_token_is_not_authed(self, fake: FakeSlack) -> None:
        """A call without any token fails with not_authed, and is still recorded."""
        with pytest.raises(SlackApiError) as raised:
            await AsyncWebClient(base_url=fake.api_url).chat_postMessage(channel="C1", text="x")

        assert raised.value.response["error"] == "not_authed"
        assert fake.calls_to("chat.postMessage")[0].token is None

    async def test_socket_url_needs_an_app_token(self, client: AsyncWebClient) -> None:
        """apps.connections.open hands out the loopback WebSocket URL only for xapp- tokens."""
        response = await client.apps_connections_open(app_token="xapp-test")
        with pytest.raises(SlackApiError) as raised:
            await client.apps_connections_open(app_token="xoxb-test")

        assert response["url"].startswith("ws://127.0.0.1:")
        assert response["url"].endswith("/link")
        assert raised.value.response["error"] == "not_allowed_token_type"


class TestWaitFor:
    """wait_for finds calls made before or after it is awaited, without polling."""

    async def test_returns_a_call_already_made(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """A call recorded earlier is returned at once."""
        await client.chat_postMessage(channel="C1", text="hi")

        call = await fake.wait_for("chat.postMessage", timeout=0.1)

        assert call.args["text"] == "hi"

    async def test_returns_a_call_made_later(self, fake: FakeSlack, client: AsyncWebClient) -> None:
        """A call that arrives while waiting wakes the waiter."""
        waiter = asyncio.create_task(fake.wait_for("chat.postMessage"))
        await asyncio.sleep(0)  # let the waiter start before the call exists
        assert not waiter.done()

        await client.chat_postMessage(channel="C1", text="later")

        assert (await waiter).args["text"] == "later"

    async def test_predicate_skips_other_calls(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """Only a call the predicate accepts is returned."""
        await client.chat_postMessage(channel="C1", text="first")
        await client.chat_postMessage(channel="C2", text="second")

        call = await fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C2")

        assert call.args["text"] == "second"

    async def test_times_out_with_the_calls_seen(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """A call that never comes fails the test and says what did come."""
        await client.auth_test()

        with pytest.raises(AssertionError, match=r"views\.open.*\['auth\.test'\]"):
            await fake.wait_for("views.open", timeout=0.05)


class TestScriptedFailures:
    """fail() and rate_limit() make the next calls fail the way Slack does."""

    async def test_fail_answers_the_error_once(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """The scripted error is answered once, then the method works again."""
        fake.fail("chat.postEphemeral", "channel_not_found")

        with pytest.raises(SlackApiError) as raised:
            await client.chat_postEphemeral(channel="C1", user="U1", text="x")
        response = await client.chat_postEphemeral(channel="C1", user="U1", text="x")

        assert raised.value.response.status_code == 200
        assert raised.value.response["error"] == "channel_not_found"
        assert response["ok"] is True

    async def test_rate_limit_without_a_retry_handler_raises(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """A 429 reaches the caller, with Retry-After, when nothing retries it."""
        fake.rate_limit("chat.postMessage", retry_after=7)

        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C1", text="x")

        assert raised.value.response.status_code == 429
        assert raised.value.response.headers["Retry-After"] == "7"
        assert raised.value.response["error"] == "ratelimited"

    async def test_rate_limit_handler_retries_and_succeeds(
        self, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """AsyncRateLimitErrorRetryHandler waits Retry-After, then the retry goes through."""
        # The handler sleeps Retry-After plus up to 1 s of jitter; drop the jitter.
        monkeypatch.setattr(
            "slack_sdk.http_retry.builtin_async_handlers.random.random", lambda: 0.0
        )
        client = AsyncWebClient(
            token="xoxb-test",
            base_url=fake.api_url,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
        )
        fake.rate_limit("chat.postMessage", retry_after=0)

        response = await client.chat_postMessage(channel="C1", text="x")

        assert response["ok"] is True
        assert len(fake.calls_to("chat.postMessage")) == 2


class TestResponseUrl:
    """response_url posts (Bolt's respond()) are recorded like API calls."""

    async def test_post_is_recorded_under_its_name(self, fake: FakeSlack) -> None:
        """The JSON body is recorded as response_url:<name>."""
        webhook = AsyncWebhookClient(fake.response_url("x"))

        response = await webhook.send(text="done", replace_original=True)

        assert response.status_code == 200
        call = await fake.wait_for("response_url:x", timeout=0.1)
        assert call.args == {"text": "done", "replace_original": True}
        assert call.token is None


class TestSocketMode:
    """A real Bolt Socket Mode handler connects, gets envelopes and acks them."""

    @pytest.fixture(name="handler")
    async def fixture_handler(self, fake: FakeSlack) -> AsyncIterator[AsyncSocketModeHandler]:
        """A connected Bolt app with a /ping command and a Home tab; closed before the fake is."""
        app = AsyncApp(client=AsyncWebClient(token="xoxb-test", base_url=fake.api_url))

        @app.command("/ping")
        async def ping(ack: AsyncAck, command: dict[str, Any]) -> None:
            await ack(f"pong {command['text']}")

        @app.event("app_home_opened")
        async def home(client: AsyncWebClient, event: dict[str, Any]) -> None:
            await client.views_publish(user_id=event["user"], view=HOME)

        handler = AsyncSocketModeHandler(app, app_token="xapp-test")
        await handler.connect_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
        yield handler
        await handler.close_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated

    @pytest.mark.usefixtures("handler")
    async def test_slash_command_round_trip(self, fake: FakeSlack) -> None:
        """A slash_commands envelope reaches the listener and its ack comes back."""
        ack = await fake.push_envelope("slash_commands", slash_command(fake, "hello"))

        assert ack["payload"] == {"text": "pong hello"}
        assert fake.calls_to("apps.connections.open")[0].token == "xapp-test"
        assert [call.method for call in fake.calls_to("auth.test")] == ["auth.test"]

    @pytest.mark.usefixtures("handler")
    async def test_an_ack_is_timed_as_it_is_read(self, fake: FakeSlack) -> None:
        """The emulator's own work after reading an ack (in a burst: parsing the acks
        read with it) is not the client's: the time stops as the ack is read."""

        class SlowToRecord(list[dict[str, Any]]):
            def append(self, ack: dict[str, Any]) -> None:
                time.sleep(0.3)  # the emulator busy after the read
                super().append(ack)

        fake.acks = SlowToRecord()
        ack, seconds = await fake.push_timed("slash_commands", slash_command(fake, "hi"))

        assert fake.acks == [ack]
        assert seconds < 0.3

    async def test_served_by_another_emulator(self, fake: FakeSlack) -> None:
        """With ``socket_mode_elsewhere`` the Web API sends the client to the other
        emulator's WebSocket, and envelopes pushed there are acked there."""
        async with FakeSlack(socket_mode_elsewhere=fake.socket_mode_url) as web_api:
            app = AsyncApp(client=AsyncWebClient(token="xoxb-test", base_url=web_api.api_url))

            @app.command("/ping")
            async def ping(ack: AsyncAck) -> None:
                await ack("pong")

            handler = AsyncSocketModeHandler(app, app_token="xapp-test")
            await handler.connect_async()  # type: ignore[no-untyped-call]  # unannotated in Bolt
            try:
                ack = await fake.push_envelope("slash_commands", slash_command(fake))
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]

        assert ack["payload"] == {"text": "pong"}
        assert len(web_api.calls_to("apps.connections.open")) == 1
        assert fake.calls_to("apps.connections.open") == []

    @pytest.mark.usefixtures("handler")
    async def test_event_is_acked_without_payload_and_handled_after(self, fake: FakeSlack) -> None:
        """Events are acked empty; the listener's own calls follow and are awaited with wait_for."""
        event = {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event_id": "Ev1",
            "event_time": 1_700_000_000,
            "event": {"type": "app_home_opened", "user": "U1", "tab": "home"},
        }

        ack = await fake.push_envelope("events_api", event, accepts_response_payload=False)
        call = await fake.wait_for("views.publish")

        assert "payload" not in ack
        # Bolt's per-request client adds the payload's team_id to every call it makes.
        assert call.args == {"user_id": "U1", "view": HOME, "team_id": "T1"}

    @pytest.mark.usefixtures("handler")
    async def test_client_reconnects_on_disconnect(self, fake: FakeSlack) -> None:
        """After Slack's disconnect message the client reconnects and still gets envelopes."""
        await fake.request_reconnect()

        ack = await fake.push_envelope("slash_commands", slash_command(fake, "again"))

        assert fake.connection_count == 2
        assert ack["payload"] == {"text": "pong again"}

    async def test_push_without_a_client_times_out(self, fake: FakeSlack) -> None:
        """Pushing with nobody connected fails the test instead of hanging."""
        with pytest.raises(AssertionError, match="no ack"):
            await fake.push_envelope("slash_commands", slash_command(fake), timeout=0.05)

    async def test_wait_connected_times_out(self, fake: FakeSlack) -> None:
        """Waiting for a client that never comes fails the test."""
        with pytest.raises(AssertionError, match="no Socket Mode client"):
            await fake.wait_connected(timeout=0.05)

    async def test_close_is_quick(self, fake: FakeSlack) -> None:
        """Closing a connected handler is quick, because the fake answers its close frame.

        A server that did not would leave the client waiting for aiohttp's 10 s close
        timeout in every Socket Mode test's teardown.
        """
        app = AsyncApp(client=AsyncWebClient(token="xoxb-test", base_url=fake.api_url))
        handler = AsyncSocketModeHandler(app, app_token="xapp-test")
        await handler.connect_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
        await fake.wait_connected()
        started = time.monotonic()

        await handler.close_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated

        assert time.monotonic() - started < 2.0
