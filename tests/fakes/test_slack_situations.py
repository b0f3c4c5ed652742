"""Situations a test steers the emulator into, answered as Slack answers them.

Archived and private channels, a revoked token, rate limits, deactivated people, views
updated with a stale hash, and events delivered again: each through the real
``AsyncWebClient`` (or Bolt over Socket Mode) on loopback, with Slack's own error
strings and HTTP behaviour, so the bot's tests meet what production meets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack_emulator import (
    MANIFEST_SCOPES,
    SLACK_LIMITS,
    TOKEN_REFUSALS,
    FakeSlack,
    retry_headers,
)

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Request"}, "blocks": [SECTION]}
HOME = {"type": "home", "blocks": [SECTION]}
# Where slack_sdk's retry handler sleeps and draws its jitter.
HANDLERS = "slack_sdk.http_retry.builtin_async_handlers"


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
    """The bot is in C1, C2 and the private C8; C7 is private and without the bot."""
    async with FakeSlack(
        users={"U1", "U2"},
        channels={"C1", "C2", "C8"},
        private_channels={"C7", "C8"},
        clock=clock,
    ) as fake:
        yield fake


@pytest.fixture(name="client")
def fixture_client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.api_url)


async def refusal(call: Any, status: int = 200) -> dict[str, Any]:
    """The body of Slack's answer to ``call``, which must be refused with ``status``."""
    with pytest.raises(SlackApiError) as raised:
        await call
    assert raised.value.response.status_code == status
    return dict(raised.value.response.data)


class TestArchivedChannels:
    async def test_posts_are_refused_with_is_archived(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        fake.archive("C1")
        assert (await refusal(client.chat_postMessage(channel="C1", text="t"))) == {
            "ok": False,
            "error": "is_archived",
        }
        body = await refusal(client.chat_postEphemeral(channel="C1", user="U1", text="t"))
        assert body["error"] == "is_archived"
        await client.chat_postMessage(channel="C2", text="t")  # other channels unaffected

    async def test_edits_are_refused_with_is_inactive(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        """chat.update's reference documents is_inactive ("frozen, archived or deleted
        channel"); is_archived is chat.postMessage's word."""
        posted = await client.chat_postMessage(channel="C1", text="card")
        fake.archive("C1")
        body = await refusal(client.chat_update(channel="C1", ts=posted["ts"], text="done"))
        assert body["error"] == "is_inactive"
        assert fake.messages[("C1", posted["ts"])]["text"] == "card"

    async def test_conversations_info_says_so(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        assert (await client.conversations_info(channel="C1"))["channel"]["is_archived"] is False
        fake.archive("C1")
        info = (await client.conversations_info(channel="C1"))["channel"]
        assert (info["is_archived"], info["is_member"]) == (True, True)

    async def test_unarchived_it_takes_posts_again(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        fake.archive("C1")
        await refusal(client.chat_postMessage(channel="C1", text="t"))
        fake.unarchive("C1")
        assert (await client.chat_postMessage(channel="C1", text="t"))["ok"] is True

    def test_a_dm_cannot_be_archived(self, fake: FakeSlack) -> None:
        with pytest.raises(ValueError, match="not DMs"):
            fake.archive("DU1")


class TestRevokedToken:
    @pytest.mark.parametrize("reason", TOKEN_REFUSALS)
    async def test_every_call_is_refused_until_restored(
        self, fake: FakeSlack, client: AsyncWebClient, reason: str
    ) -> None:
        """auth.test included, with 200 and ok: false, as Slack answers; then restored."""
        fake.revoke_token(reason)
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: client.auth_test(),
            lambda: client.chat_postMessage(channel="C1", text="t"),
            lambda: client.conversations_open(users="U1"),
            lambda: client.views_publish(user_id="U1", view=HOME),
            lambda: client.users_info(user="U1"),
        ]
        for call in calls:
            assert await refusal(call()) == {"ok": False, "error": reason}
        fake.restore_token()
        for call in calls:
            assert (await call())["ok"] is True

    async def test_one_token_alone(self, fake: FakeSlack, client: AsyncWebClient) -> None:
        """A token named is refused alone; app-level tokens are never touched."""
        fake.revoke_token(token="xoxb-test")
        other = AsyncWebClient(token="xoxb-other", base_url=fake.api_url)
        assert (await refusal(client.auth_test()))["error"] == "token_revoked"
        assert (await other.auth_test())["ok"] is True
        fake.revoke_token("invalid_auth")
        assert (await client.apps_connections_open(app_token="xapp-test"))["ok"] is True
        fake.restore_token()
        assert (await client.auth_test())["ok"] is True

    def test_only_slacks_reasons(self, fake: FakeSlack) -> None:
        with pytest.raises(ValueError, match="token_revoked"):
            fake.revoke_token("expired")


class TestRateLimits:
    async def test_off_by_default(self, client: AsyncWebClient) -> None:
        """Existing tests make many calls quickly; nothing limits them unless asked."""
        posted = await client.chat_postMessage(channel="C1", text="t")
        for n in range(60):
            await client.chat_update(channel="C1", ts=posted["ts"], text=str(n))
        for _ in range(5):
            await client.chat_postMessage(channel="C1", text="t")

    async def test_beyond_the_limit_is_429_with_retry_after(
        self, fake: FakeSlack, client: AsyncWebClient, clock: Clock
    ) -> None:
        """HTTP 429, Retry-After in whole seconds until the window frees a call, and
        Slack's body; refused calls do not count; the window slides on the clock."""
        posted = await client.chat_postMessage(channel="C1", text="t")
        fake.throttle("chat.update", 2, window=60.0)
        await client.chat_update(channel="C1", ts=posted["ts"], text="1")
        clock.now += 20.5
        await client.chat_update(channel="C1", ts=posted["ts"], text="2")
        with pytest.raises(SlackApiError) as raised:
            await client.chat_update(channel="C1", ts=posted["ts"], text="3")
        response = raised.value.response
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "40"
        assert response.data == {"ok": False, "error": "ratelimited"}
        assert fake.messages[("C1", posted["ts"])]["text"] == "2"
        clock.now += 39.5
        assert (await client.chat_update(channel="C1", ts=posted["ts"], text="4"))["ok"]
        assert len(fake.calls_to("chat.update")) == 4  # the refused one is recorded too

    async def test_like_slack_posts_are_one_a_second_per_channel(
        self, fake: FakeSlack, client: AsyncWebClient, clock: Clock
    ) -> None:
        fake.throttle_like_slack()
        await client.chat_postMessage(channel="C1", text="one")
        body = await refusal(client.chat_postMessage(channel="C1", text="two"), status=429)
        assert body["error"] == "ratelimited"
        await client.chat_postMessage(channel="C2", text="elsewhere")
        clock.now += 1.0
        await client.chat_postMessage(channel="C1", text="two")

    async def test_like_slack_with_short_windows(
        self, fake: FakeSlack, client: AsyncWebClient, clock: Clock
    ) -> None:
        """chat.update is Tier 3, 50 a minute; window_scale=0.01 makes it 50 in 0.6 s."""
        assert SLACK_LIMITS["chat.update"] == (50, 60.0, False)
        posted = await client.chat_postMessage(channel="C1", text="t")
        fake.throttle_like_slack(window_scale=0.01)
        for n in range(50):
            await client.chat_update(channel="C1", ts=posted["ts"], text=str(n))
        await refusal(client.chat_update(channel="C1", ts=posted["ts"], text="x"), status=429)
        clock.now += 0.6
        await client.chat_update(channel="C1", ts=posted["ts"], text="x")
        fake.unthrottle()
        for _ in range(3):
            await client.chat_postMessage(channel="C1", text="t")

    async def test_slack_sdks_retry_handler_waits_retry_after(
        self, fake: FakeSlack, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """AsyncRateLimitErrorRetryHandler reads the 429's Retry-After, sleeps that long
        (here on the fake clock, jitter dropped) and the retry goes through."""
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.now += seconds

        monkeypatch.setattr(f"{HANDLERS}.asyncio", SimpleNamespace(sleep=sleep))
        monkeypatch.setattr(f"{HANDLERS}.random.random", lambda: 0.0)
        client = AsyncWebClient(
            token="xoxb-test",
            base_url=fake.api_url,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
        )
        fake.throttle("views.publish", 1, window=5.0)
        await client.views_publish(user_id="U1", view=HOME)

        response = await client.views_publish(user_id="U2", view=HOME)

        assert response["ok"] is True
        assert slept == [5.0]
        assert len(fake.calls_to("views.publish")) == 3

    @pytest.mark.parametrize(("retries", "succeeds"), [(4, True), (3, False)])
    async def test_four_429s_in_a_row(
        self, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch, retries: int, succeeds: bool
    ) -> None:
        """rate_limit scripts the next N answers as 429s: a handler allowed four retries
        rides out four, one allowed three gives up with the fourth 429."""
        monkeypatch.setattr(f"{HANDLERS}.random.random", lambda: 0.0)
        client = AsyncWebClient(
            token="xoxb-test",
            base_url=fake.api_url,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=retries)],
        )
        fake.rate_limit("chat.postMessage", retry_after=0, times=4)
        if succeeds:
            assert (await client.chat_postMessage(channel="C1", text="t"))["ok"] is True
        else:
            body = await refusal(client.chat_postMessage(channel="C1", text="t"), status=429)
            assert body["error"] == "ratelimited"
        assert len(fake.calls_to("chat.postMessage")) == retries + 1

    def test_a_limit_must_allow_something(self, fake: FakeSlack) -> None:
        with pytest.raises(ValueError, match="at least one call"):
            fake.throttle("chat.update", 0)


class TestDeactivatedUsers:
    async def test_users_info_says_deleted(self, fake: FakeSlack, client: AsyncWebClient) -> None:
        assert (await client.users_info(user="U1"))["user"]["deleted"] is False
        fake.deactivate("U1")
        user = (await client.users_info(user="U1"))["user"]
        assert (user["id"], user["deleted"], user["is_bot"]) == ("U1", True, False)
        assert (await client.users_info(user="UBOT"))["user"]["is_bot"] is True
        assert (await refusal(client.users_info(user="U404")))["error"] == "user_not_found"

    async def test_new_dm_refused_open_dm_takes_posts_nobody_reads(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        dm = (await client.conversations_open(users="U1"))["channel"]["id"]
        other = (await client.conversations_open(users="U2"))["channel"]["id"]
        fake.deactivate("U1")

        assert (await refusal(client.conversations_open(users="U1")))["error"] == "user_disabled"
        posted = await client.chat_postMessage(channel=dm, text="your code")
        await client.chat_postMessage(channel=other, text="hello")

        key = (dm, posted["ts"])
        assert fake.messages[key]["text"] == "your code"
        assert list(fake.unread) == [key]
        fake.reactivate("U1")
        assert (await client.conversations_open(users="U1"))["channel"]["id"] == dm

    async def test_users_info_needs_users_read(self) -> None:
        without = [s for s in MANIFEST_SCOPES if s != "users:read"]
        async with FakeSlack(users={"U1"}, scopes=without) as fake:
            client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
            body = await refusal(client.users_info(user="U1"))
        assert (body["error"], body["needed"]) == ("missing_scope", "users:read")


class TestViewHashes:
    async def test_an_update_with_a_stale_hash_is_a_hash_conflict(
        self, fake: FakeSlack, client: AsyncWebClient
    ) -> None:
        opened = (await client.views_open(trigger_id=fake.trigger_id(), view=MODAL))["view"]
        updated = (
            await client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)
        )["view"]
        assert updated["id"] == opened["id"]
        assert updated["hash"] != opened["hash"]

        body = await refusal(
            client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)
        )
        assert body == {"ok": False, "error": "hash_conflict"}
        # Without a hash Slack does not check: last writer wins.
        assert (await client.views_update(view_id=opened["id"], view=MODAL))["ok"] is True

    async def test_by_external_id(self, fake: FakeSlack, client: AsyncWebClient) -> None:
        view = MODAL | {"external_id": "req-1"}
        opened = (await client.views_open(trigger_id=fake.trigger_id(), view=view))["view"]
        updated = (await client.views_update(external_id="req-1", view=view))["view"]
        assert updated["id"] == opened["id"]
        body = await refusal(
            client.views_update(external_id="req-1", hash=opened["hash"], view=view)
        )
        assert body["error"] == "hash_conflict"
        assert (await refusal(client.views_update(external_id="nope", view=view)))["error"] == (
            "not_found"
        )

    async def test_home_tab_with_a_stale_hash(self, client: AsyncWebClient) -> None:
        first = (await client.views_publish(user_id="U1", view=HOME))["view"]
        second = (await client.views_publish(user_id="U1", view=HOME, hash=first["hash"]))["view"]
        assert second["id"] == first["id"]
        body = await refusal(client.views_publish(user_id="U1", view=HOME, hash=first["hash"]))
        assert body["error"] == "hash_conflict"


class TestRedelivery:
    def test_http_retry_headers(self) -> None:
        assert retry_headers() == {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        assert retry_headers(3, "http_error")["X-Slack-Retry-Num"] == "3"
        with pytest.raises(ValueError, match="attempt 1"):
            retry_headers(0)

    async def test_socket_mode_redelivery_reaches_bolt_as_retry_headers(
        self, fake: FakeSlack
    ) -> None:
        """The same event again, with retry_attempt and retry_reason, which Bolt hands
        its listeners as x-slack-retry-num and x-slack-retry-reason."""
        app = AsyncApp(client=AsyncWebClient(token="xoxb-test", base_url=fake.api_url))
        seen: asyncio.Queue[tuple[str, Any, Any]] = asyncio.Queue()

        @app.event("app_home_opened")
        async def home(request: AsyncBoltRequest, body: dict[str, Any]) -> None:
            headers = request.headers
            await seen.put(
                (
                    body["event_id"],
                    headers.get("x-slack-retry-num"),
                    headers.get("x-slack-retry-reason"),
                )
            )

        event = {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event_id": "Ev1",
            "event_time": 1_700_000_000,
            "event": {"type": "app_home_opened", "user": "U1", "tab": "home"},
        }
        handler = AsyncSocketModeHandler(app, app_token="xapp-test")
        await handler.connect_async()  # type: ignore[no-untyped-call]  # unannotated in Bolt
        try:
            await fake.push_envelope("events_api", event, accepts_response_payload=False)
            ack = await fake.redeliver_event(event)
            first, again = await seen.get(), await seen.get()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]  # unannotated in Bolt

        assert "payload" not in ack
        assert first == ("Ev1", ["0"], [""])
        assert again == ("Ev1", ["1"], ["http_timeout"])


class TestPrivateChannels:
    async def test_outside_a_private_channel_it_does_not_exist(
        self, client: AsyncWebClient
    ) -> None:
        """channel_not_found for posts and conversations.info; a public channel the bot
        is not in says not_in_channel."""
        assert (await refusal(client.chat_postMessage(channel="C7", text="t")))["error"] == (
            "channel_not_found"
        )
        assert (await refusal(client.conversations_info(channel="C7")))["error"] == (
            "channel_not_found"
        )
        assert (await refusal(client.chat_postMessage(channel="C9", text="t")))["error"] == (
            "not_in_channel"
        )
        info = (await client.conversations_info(channel="C9"))["channel"]
        assert (info["is_private"], info["is_member"]) == (False, False)

    async def test_inside_one_the_bot_posts_and_reads(self, client: AsyncWebClient) -> None:
        await client.chat_postMessage(channel="C8", text="t")
        info = (await client.conversations_info(channel="C8"))["channel"]
        assert (info["is_private"], info["is_member"]) == (True, True)

    async def test_make_private(self, fake: FakeSlack, client: AsyncWebClient) -> None:
        fake.member_of.discard("C2")
        fake.make_private("C2")
        assert (await refusal(client.chat_postMessage(channel="C2", text="t")))["error"] == (
            "channel_not_found"
        )
        fake.make_private("C2", private=False)
        assert (await refusal(client.chat_postMessage(channel="C2", text="t")))["error"] == (
            "not_in_channel"
        )

    async def test_reading_one_needs_groups_read(self) -> None:
        without = [s for s in MANIFEST_SCOPES if s != "groups:read"]
        async with FakeSlack(channels={"C8"}, private_channels={"C8"}, scopes=without) as fake:
            client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
            body = await refusal(client.conversations_info(channel="C8"))
        assert (body["error"], body["needed"]) == ("missing_scope", "groups:read")
