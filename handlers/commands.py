"""``/exalate``: one listener that parses the sub-command and answers within 3 s."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.errors import ApprovalError
from bot.service import ConnectionService, utc_now
from handlers import blocks
from handlers.ids import COMMAND
from handlers.inflight import InFlight
from handlers.payloads import UsageError, connect_prefill, parse_command

log = logging.getLogger(__name__)


def register(
    app: AsyncApp, service: ConnectionService, local_short_name: str, inflight: InFlight
) -> None:
    """Install the slash-command listener."""

    async def exalate(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        try:
            line = parse_command(command.get("text") or "")
            prefill = connect_prefill(line) if line.sub_command == "connect" else {}
        except UsageError as error:
            await ack(text=f"{blocks.escape(str(error))}\n\n{blocks.USAGE}")
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
            try:
                await client.views_open(trigger_id=command["trigger_id"], view=view)
            except SlackApiError as error:
                log.warning("request_modal_failed error=%s", error.response.get("error"))
                await respond(text="Slack would not open the form in time; run the command again.")
            service.warm_up()
        elif line.sub_command in ("status", "cancel"):
            text, body = await answer(line.sub_command, " ".join(line.words), command["user_id"])
            await ack(text=text, blocks=body)
        else:
            await ack(text=blocks.USAGE)

    async def answer(sub_command: str, argument: str, user: str) -> tuple[str, list[blocks.Json]]:
        """The private reply to ``status …`` and ``cancel …``; database reads only."""
        try:
            if sub_command == "cancel":
                if not argument:
                    raise ApprovalError(
                        f"Name the connection: `{COMMAND} cancel <connection name>`."
                    )
                cancelled = await service.cancel_named(argument, user)
                text = f"Cancelled request #{cancelled.id}; approvers can no longer approve it."
            elif argument.lower() == "mine":
                return blocks.status_message(await service.mine(user), utc_now(), user, mine=True)
            elif argument:
                return blocks.history_message(*await service.history(argument))
            else:
                return blocks.status_message(await service.pending(), utc_now(), user)
        except ApprovalError as error:
            text = blocks.explain(error)
        return text, [blocks.section(text)]

    app.command(COMMAND)(inflight.track(exalate))
