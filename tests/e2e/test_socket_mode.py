"""Socket Mode: the same listeners, reached over a WebSocket instead of HTTP."""

from __future__ import annotations

from bot.app import Runtime, connect_socket_mode
from bot.config import Settings
from tests.e2e.harness import ALICE
from tests.fakes.slack import FakeSlack


async def test_slash_command_round_trip(settings: Settings, slack: FakeSlack) -> None:
    """apps.connections.open with the app token, an envelope in, the ack payload out."""
    runtime = await Runtime.start(settings, http_mode=False)
    handler = await connect_socket_mode(runtime)
    try:
        ack = await slack.push_envelope(
            "slash_commands",
            {
                "command": "/exalate",
                "text": "status",
                "user_id": ALICE,
                "team_id": "T1",
                "channel_id": "C0GENERAL",
                "trigger_id": "t",
                "api_app_id": "A1",
                "response_url": slack.response_url("socket"),
            },
        )
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
        await runtime.close()
    assert "Nothing is pending" in ack["payload"]["text"]
    opened = slack.calls_to("apps.connections.open")
    assert opened
    assert opened[0].token == "xapp-e2e-app-token"
