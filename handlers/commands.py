"""``/exalate``: one listener that parses the sub-command and answers within 3 s."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.service import ConnectionService, utc_now
from handlers import blocks
from handlers.ids import COMMAND
from handlers.payloads import UsageError, connect_prefill, parse_command


def register(app: AsyncApp, service: ConnectionService, local_short_name: str) -> None:
    """Install the slash-command listener."""

    async def exalate(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        try:
            line = parse_command(command.get("text") or "")
            if line.sub_command == "connect":
                prefill = connect_prefill(line)
        except UsageError as error:
            await ack(text=f"{error}\n\n{blocks.USAGE}")
            return
        if line.sub_command == "connect":
            await ack()
            # The trigger_id expires 3 s after the command: open the modal before anything else.
            view = blocks.request_modal(
                local=prefill.get("local", local_short_name),
                remote=prefill.get("remote", ""),
                name=prefill.get("name", ""),
                description=prefill.get("description", ""),
                project=prefill.get("project", ""),
                projects=service.projects.peek(),
            )
            await client.views_open(trigger_id=command["trigger_id"], view=view)
            service.warm_up()
        elif line.sub_command == "status":
            text, body = blocks.status_message(await service.pending(), utc_now())
            await ack(text=text, blocks=body)
        else:
            await ack(text=blocks.USAGE)

    app.command(COMMAND)(exalate)
