"""``/exalate``: one listener that parses the sub-command and answers within 3 s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.approvals.errors import ApprovalError
from bot.service import ConnectionService, HealthWatch, Listings, Sites
from handlers import blocks
from handlers.actions import SOMETHING_WENT_WRONG
from handlers.blocks.incidents import health_message
from handlers.context import health_in, listings_in, service_in, shared_status_in
from handlers.guard import SLACK_BUDGET_SECONDS
from handlers.ids import COMMAND
from handlers.incident_actions import NOT_WATCHED
from handlers.payloads import CommandLine, UsageError, connect_prefill, parse_command
from handlers.request_form import request_form
from handlers.shared_status import SharedStatus, ack_body

log = logging.getLogger(__name__)


async def status_answer(
    listings: Listings,
    shared: SharedStatus,
    argument: str,
    user: str,
    site: str | None = None,
) -> str:
    """``status``, ``status mine`` or ``status <name>``, each optionally ``site=…``, as
    the ack's JSON body: database reads only."""
    try:
        if site is not None:
            site = listings.sites[site].name
        if argument.lower() == "mine":
            mine = await listings.mine(user, blocks.LIST_MAX)
            return ack_body(*blocks.status_message(mine, listings.clock(), user, mine=True))
        if argument:
            try:  # answered in the ack, and the approver check may wait on Slack
                async with asyncio.timeout(SLACK_BUDGET_SECONDS):
                    request, events = await listings.history(argument, user, site)
            except TimeoutError:
                text = "Slack is slow to say who the approvers are just now; ask again soon."
                return ack_body(text, [blocks.section(text)])
            if events is None:
                return ack_body(*blocks.summary_message(request))
            return ack_body(*blocks.history_message(request, events))
        return shared.answer(
            await listings.open_requests(blocks.STATUS_LIST_MAX, site),
            listings.clock(),
            user,
            foreign=listings.foreign_pending(site),
            listed_at=listings.foreign_listed_at(site),
        )
    except ApprovalError as error:
        text = blocks.explain(error)
        return ack_body(text, [blocks.section(text)])


async def exalate(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """``/exalate <sub-command>``: each answer starts within Slack's 3 s."""
    service = service_in(context)
    try:
        line = parse_command(command.get("text") or "")
        prefill = connect_prefill(line) if line.sub_command == "connect" else {}
        site = site_option(service, line)
    except UsageError as error:
        await ack(text=f"{blocks.escape(str(error))}\n\n{blocks.USAGE}")
        return
    user, argument = command["user_id"], " ".join(line.words)
    if line.sub_command == "status":
        listings = listings_in(context)
        await ack(await status_answer(listings, shared_status_in(context), argument, user, site))
        if not argument:  # after the answers: the next asker finds a fresh read
            await listings.renew_open_requests(blocks.STATUS_LIST_MAX, site)
    elif line.sub_command == "health":
        await health(ack, respond, context, line, site)
    elif line.sub_command == "connect" and not service.sites.open():
        await ack(text="Every site is retired: no site takes new requests.")
    elif line.sub_command in ("connect", "cancel"):
        await ack()  # cancelling updates the card and DMs: more than 3 s may pass
        try:
            if line.sub_command == "connect":
                await open_request_form(context, command["trigger_id"], prefill, respond)
            else:
                text = await cancel_reply(service, argument, user, site)
                await respond(text=text, response_type="ephemeral")
        except Exception as error:  # after the ack nothing may escape to Bolt's log
            log.error(
                "command_failed sub_command=%s kind=%s", line.sub_command, type(error).__name__
            )
    else:
        await ack(text=blocks.USAGE)


async def health(
    ack: AsyncAck,
    respond: AsyncRespond,
    context: AsyncBoltContext,
    line: CommandLine,
    site: str | None,
) -> None:
    """``health [site=…]``: the overview, to the asker alone. Acked first, then sent by
    the response URL: it reads every site's last poll and open cards, which need not
    fit in Slack's 3 s."""
    watch = health_in(context)
    if watch is None:
        await ack(text=NOT_WATCHED)
        return
    if line.words:
        bad = ", ".join(line.words)
        await ack(text=f"`health` does not understand: {blocks.escape(bad)}.\n\n{blocks.USAGE}")
        return
    await ack()
    try:
        text, body = await health_answer(watch, service_in(context).sites, site)
        await respond(text=text, blocks=body, response_type="ephemeral")
    except Exception as error:  # after the ack nothing may escape to Bolt's log
        log.error("command_failed sub_command=health kind=%s", type(error).__name__)
        with contextlib.suppress(Exception):
            await respond(text=SOMETHING_WENT_WRONG, response_type="ephemeral")


async def health_answer(
    watch: HealthWatch, sites: Sites, site: str | None = None
) -> tuple[str, list[blocks.Json]]:
    """The overview of ``site``, or of every site, with each one's console link."""
    names = sites.names if site is None else (site,)
    consoles = {s.name: s.config.console for s in sites}
    return health_message(await watch.overview(names), consoles)


def site_option(service: ConnectionService, line: CommandLine) -> str | None:
    """The ``site=…`` of a command, checked: a site ``connect`` may create on, or any
    configured one for the commands that read."""
    site = line.options.get("site")
    if site is None:
        return None
    if site not in service.sites.names:
        raise UsageError(
            f"There is no site {site}; the sites are {', '.join(service.sites.names)}."
        )
    if line.sub_command == "connect":
        try:
            service.sites.taking_requests(site)
        except ApprovalError as error:
            raise UsageError(str(error)) from None
    return site


async def open_request_form(
    context: AsyncBoltContext, trigger_id: str, prefill: dict[str, str], respond: AsyncRespond
) -> None:
    """``connect``: the request form, pre-filled, opened before anything else because the
    trigger_id expires 3 s after the command; then Jira's lists start loading for the
    checks the submission will need."""
    service = service_in(context)
    view = request_form(service, prefill)
    try:
        await context.client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as error:
        log.warning("request_modal_failed error=%s", error.response.get("error"))
        await respond(text="Slack would not open the form in time; run the command again.")
    site = service.sites.chosen(prefill.get("site", ""))
    if site is not None:  # a request for one site asks no other
        site.warm_up()
    else:
        service.warm_up()


async def cancel_reply(
    service: ConnectionService, argument: str, user: str, site: str | None = None
) -> str:
    """``cancel <name> [site=…]``: withdraw the request so named, or say why not."""
    if not argument:
        return f"Name the connection: `{COMMAND} cancel <connection name>`."
    try:
        cancelled = await service.cancel_named(argument, user, site)
    except ApprovalError as error:
        return blocks.explain(error)
    return f"Cancelled request #{cancelled.id}; approvers can no longer approve it."
