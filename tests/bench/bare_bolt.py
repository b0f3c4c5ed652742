"""The baseline: a bare Bolt AsyncApp that only acks, served like the bot.

python -m tests.bench.bare_bolt --port N             HTTP mode, POST /slack/events
python -m tests.bench.bare_bolt --socket --port N    Socket Mode (SLACK_APP_TOKEN); the
                                                     port only tells it is up
--inline: Bolt awaits the listener and answers as it returns (``process_before_response``)
instead of checking every 10 ms whether it has acked, as by default: the fastest a
Bolt app can answer, and what the bot does.
Reads SLACK_API_URL and SLACK_SIGNING_SECRET.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def build(*, inline: bool) -> AsyncApp:
    """Same client and signing set-up as the bot, none of its work."""
    client = AsyncWebClient(token="xoxb-bench", base_url=os.environ["SLACK_API_URL"])
    app = AsyncApp(
        client=client,
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        process_before_response=inline,
    )

    async def just_ack(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()

    app.command("/exalate")(just_ack)
    app.action("exalate_approve")(just_ack)
    return app


async def socket_mode(port: int, *, inline: bool) -> None:
    handler = AsyncSocketModeHandler(build(inline=inline), os.environ["SLACK_APP_TOKEN"])
    await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await handler.close_async()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--socket", action="store_true")
    parser.add_argument("--inline", action="store_true")
    arguments = parser.parse_args()
    if arguments.socket:
        with contextlib.suppress(KeyboardInterrupt):  # the benchmark stops it with SIGINT
            asyncio.run(socket_mode(arguments.port, inline=arguments.inline))
    else:
        web.run_app(
            build(inline=arguments.inline).web_app(path="/slack/events"),
            host="127.0.0.1",
            port=arguments.port,
            print=None,
            access_log=None,
            backlog=1024,  # as the bot's: 200 connections at once overflow aiohttp's 128
        )
