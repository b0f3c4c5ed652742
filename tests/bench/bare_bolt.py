"""The baseline: a bare Bolt AsyncApp that only acks, served like the bot.

python -m tests.bench.bare_bolt --port N    (reads SLACK_API_URL, SLACK_SIGNING_SECRET)
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def build() -> AsyncApp:
    """Same client and signing set-up as the bot, none of its work."""
    client = AsyncWebClient(token="xoxb-bench", base_url=os.environ["SLACK_API_URL"])
    app = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])

    async def just_ack(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()

    app.command("/exalate")(just_ack)
    app.action("exalate_approve")(just_ack)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    web.run_app(
        build().web_app(path="/slack/events"),
        host="127.0.0.1",
        port=parser.parse_args().port,
        print=None,
        access_log=None,
    )
