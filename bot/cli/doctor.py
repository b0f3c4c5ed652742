"""``exalate-bot doctor``: is everything the bot needs in place? One line per check.

Each check says ✓, ✗ (with how to fix it) or ! (could not be checked, with why). The
exit code is non-zero when any check failed, so scripts and CI can gate on it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.pool import NullPool

from bot.approvals.model import DEFAULT_SITE, Problem, Status
from bot.cli.doctor_queues import sync_queues
from bot.cli.doctor_routes import SlackCheck, route_checks
from bot.cli.doctor_slack import Check, Slack, approvers_check, channel_check
from bot.config import Settings
from bot.exalate import ExalateAuthError, ExalateClient, ExalateEndpointMissing, ExalateError
from bot.private_files import loose, sqlite_files
from bot.site_config import SiteConfig, config_path, loosely_writable
from bot.vault import key_file_for
from storage.db import DatabaseProblem, explained, make_engine, sqlite_file
from storage.schema import SchemaState, schema_state, state_of
from storage.tables import RequestRow

REQUIRED_SCOPES = ("commands", "chat:write", "im:write", "users:read")
"""Scopes every installation needs; usergroups:read, channels:read and groups:read are
added as EXALATE_APPROVERS and EXALATE_APPROVAL_CHANNEL need them (`needed_scopes`)."""
TOKEN_REFUSALS = frozenset({"token_revoked", "invalid_auth", "account_inactive"})
"""How Slack refuses a bot token it no longer honours, on every call."""
MINIMUM_JIRA = (8, 14)  # personal access tokens


async def run_checks(settings: Settings, *, http_mode: bool) -> AsyncIterator[Check]:
    """Every check, in the order a person would fix them."""
    async with aiohttp.ClientSession() as session:
        # No retry handlers: a doctor answers at once, and says what it saw.
        slack = Slack(
            AsyncWebClient(
                token=settings.slack_bot_token.get_secret_value(),
                base_url=settings.slack_api_url,
                session=session,
                retry_handlers=[],
            )
        )
        yield await _transport(settings, http_mode)
        for name, slack_check in (
            ("Slack bot token", _slack_token),
            ("Approval channel", _approval_channel),
            ("Approvers", _approvers),
            *route_checks(settings.routes),
            *_alerts_checks(settings),
        ):
            if slack.refused is not None:
                yield Check(
                    name, None, f"not checked: Slack refuses the bot token ({slack.refused})."
                )
                continue
            try:
                yield await slack_check(slack, settings)
            except (aiohttp.ClientError, TimeoutError) as error:
                yield Check(
                    name,
                    False,
                    f"cannot reach Slack at {settings.slack_api_url} "
                    f"({type(error).__name__}); check SLACK_API_URL and the network.",
                )
        for site in settings.sites:
            async for check in _site_checks(site, settings, session):
                yield check
    yield await _database(settings)
    if (mode_check := file_modes(settings)) is not None:
        yield mode_check
    if (sites_file := config_path(settings.exalate_config)) is not None:
        yield sites_file_mode(sites_file)


def sites_file_mode(path: Path) -> Check:
    """✗ when others than its owner may change which Jira gets the bot's credentials."""
    if loosely_writable(path):
        return Check(
            "Sites file",
            False,
            f"{path} is writable by its group or others, who could send the credentials "
            f"elsewhere; run: chmod go-w {path}",
        )
    return Check("Sites file", True, f"{path}, writable by its owner only")


def needed_scopes(settings: Settings) -> list[str]:
    """The bot scopes these settings need, in the manifest's order: usergroups:read for
    approver groups (default or a route's); channels:read for the channels cards go to,
    groups:read for a ``G…`` one (a private ``C…`` channel's need shows when the channel
    is looked at)."""
    needed = list(REQUIRED_SCOPES)
    if settings.routes.groups:
        needed.append("usergroups:read")
    alerts = (settings.alerts.channel,) if settings.alerts.channel else ()
    channels = (settings.exalate_approval_channel, *settings.routes.channels, *alerts)
    if any(not channel.startswith("G") for channel in channels):
        needed.append("channels:read")
    if any(channel.startswith("G") for channel in channels):
        needed.append("groups:read")
    return needed


async def _slack_token(slack: Slack, settings: Settings) -> Check:
    name = "Slack bot token"
    try:
        response = await slack.client.auth_test()
    except SlackApiError as error:
        slack.refused = code = str(error.response.get("error"))
        if code in TOKEN_REFUSALS:
            return Check(
                name,
                False,
                f"Slack refuses the bot token ({code}): reinstall the app and copy the new "
                "Bot User OAuth Token into SLACK_BOT_TOKEN.",
            )
        return Check(
            name,
            False,
            f"auth.test says {code}; copy the Bot User OAuth Token into SLACK_BOT_TOKEN.",
        )
    slack.bot_name = str(response.get("user") or slack.bot_name)
    granted = set((response.headers.get("x-oauth-scopes") or "").split(","))
    if missing := [scope for scope in needed_scopes(settings) if scope not in granted]:
        return Check(
            name,
            False,
            f"missing scopes {', '.join(missing)}: reinstall the app from manifest.yml, "
            "which asks for them (a workspace admin approves new scopes); README: Upgrading.",
        )
    return Check(name, True, f"valid for {response.get('team')}, scopes present")


async def _transport(settings: Settings, http_mode: bool) -> Check:
    if http_mode:
        ok = settings.slack_signing_secret is not None
        return Check(
            "HTTP mode",
            ok,
            "signing secret set"
            if ok
            else "SLACK_SIGNING_SECRET is missing (Basic Information → Signing Secret).",
        )
    ok = settings.slack_app_token is not None
    return Check(
        "Socket Mode",
        ok,
        "app-level token set"
        if ok
        else "SLACK_APP_TOKEN is missing: create an app-level token with connections:write.",
    )


async def _approval_channel(slack: Slack, settings: Settings) -> Check:
    channel = settings.exalate_approval_channel
    return await channel_check(slack, "Approval channel", channel, "EXALATE_APPROVAL_CHANNEL")


def _alerts_checks(settings: Settings) -> list[tuple[str, SlackCheck]]:
    """The alerts channel, when ``[alerts]`` names one (else incidents go to the approval
    channel, checked already)."""
    if not settings.alerts.enabled or settings.alerts.channel is None:
        return []
    return [("Alerts channel", _alerts_channel)]


async def _alerts_channel(slack: Slack, settings: Settings) -> Check:
    channel = settings.alerts.channel or settings.exalate_approval_channel
    return await channel_check(slack, "Alerts channel", channel, "[alerts] channel")


async def _approvers(slack: Slack, settings: Settings) -> Check:
    return await approvers_check(
        slack, "Approvers", settings.exalate_approvers, "EXALATE_APPROVERS"
    )


def file_modes(settings: Settings) -> Check | None:
    """✗ for a database, side or key file other users may read or write; None when
    the database is not an SQLite file."""
    database = sqlite_file(settings.database_url)
    if database is None:
        return None
    if not database.exists():
        return Check("File modes", None, f"{database} does not exist yet: the bot creates it 0600")
    files = [*sqlite_files(database), key_file_for(database)]
    exposed = [f"{file} ({mode:04o})" for file in files if (mode := loose(file)) is not None]
    if exposed:
        return Check(
            "File modes",
            False,
            f"open to other users: {', '.join(exposed)}; the bot makes them private at "
            "start, or run: chmod 600 on each",
        )
    return Check("File modes", True, "database and key files are private (0600)")


async def _site_checks(
    site: SiteConfig, settings: Settings, session: aiohttp.ClientSession
) -> AsyncIterator[Check]:
    """One site's checks, each named with the site when it is not the only, unnamed one:
    its URL, its credentials, its Jira's version, its Exalate API, its projects and its
    sync queues; and, when the bot has met one, Exalate refusing its create call."""
    exalate = ExalateClient(
        session,
        site.jira_url,
        site.credentials,
        read_timeout=settings.jira_timeout,
        read_retries=0,
        credentials_from=site.credentials_from,
    )
    prefix = "" if site.name == DEFAULT_SITE else f"Site {site.name}: "
    retired = " (retired)" if site.retired else ""
    for check in (jira_transport(site),):
        yield replace(check, name=prefix + check.name + retired)
    for name, jira_check in (
        ("Jira token" if site.uses_token else "Jira login", _jira_credentials),
        ("Jira version", _jira_version),
        ("Exalate REST API", _exalate_api),
        ("Projects", _projects),
        ("Sync queues", sync_queues),
    ):
        try:
            check = await jira_check(exalate, site)
        except ExalateError as error:  # unreachable, timed out, refused: said plainly
            check = Check(name, False, str(error))
        yield replace(check, name=prefix + check.name)
    if (refused := await _create_refused(site, settings)) is not None:
        yield replace(refused, name=prefix + refused.name)


def jira_transport(site: SiteConfig) -> Check:
    """✗ when the site's credentials would cross the network unencrypted."""
    if site.credentials_in_clear:
        return Check(
            "Jira URL",
            False,
            f"{site.jira_url} is plain http://: {site.credentials_from} travels in clear; "
            "use https://.",
        )
    return Check("Jira URL", True, "HTTPS, or plain HTTP on loopback only")


async def _jira_credentials(exalate: ExalateClient, site: SiteConfig) -> Check:
    name = "Jira token" if site.uses_token else "Jira login"
    try:
        user = await exalate.myself()
    except ExalateAuthError:
        fix = (
            "create a personal access token (Profile → Personal Access Tokens) for an Exalate admin"
            if site.uses_token
            else "check the user name and password of an Exalate admin"
        )
        return Check(name, False, f"Jira refuses {site.credentials_from}: {fix}.")
    return Check(name, True, f"valid, acting as {user.name}")


async def _projects(exalate: ExalateClient, site: SiteConfig) -> Check:
    """How many projects the form will offer: none means nobody can request."""
    projects = [p for p in await exalate.list_projects() if site.project_allowed(p.key)]
    if not projects:
        allowed = ", ".join(site.projects) or "any"
        return Check(
            "Projects",
            False,
            f"none to offer (allowed: {allowed}); the bot's Jira user must be able to "
            "browse a project the allow-list names.",
        )
    return Check("Projects", True, f"{len(projects)} open for incoming sync")


async def _jira_version(exalate: ExalateClient, _site: SiteConfig) -> Check:
    info = await exalate.server_info()
    ok = tuple(info.version_numbers[:2]) >= MINIMUM_JIRA
    return Check(
        "Jira version",
        ok,
        f"{info.version}" + ("" if ok else ": personal access tokens need Jira 8.14 or later."),
    )


async def _exalate_api(exalate: ExalateClient, _site: SiteConfig) -> Check:
    """The connection list: reachable, and whole. A list the bot cannot read whole
    proves no name free, so approvals there fail with Retry: a warning."""
    try:
        listing = await exalate.connection_list()
    except ExalateEndpointMissing:
        return Check(
            "Exalate REST API",
            False,
            "no /rest/issuehub/4.0/connections: is the "
            "Exalate app installed and enabled on this Jira?",
        )
    if not listing.complete:
        return Check(
            "Exalate REST API",
            None,
            f"warning: reachable, but the connection list is incomplete: {len(listing.results)}"
            f" of {listing.total} connection(s), and this node did not serve the rest by page "
            "(limit with offset or start). The bot cannot prove a name free there, so "
            "approvals fail with Retry, and `status` shows no console-made connections.",
        )
    return Check("Exalate REST API", True, f"reachable, {len(listing.results)} connection(s)")


async def _create_refused(site: SiteConfig, settings: Settings) -> Check | None:
    """✗ while requests of the site stand failed because Exalate refused the bot's
    create call (401/403): what a running bot met, and a doctor cannot ask Exalate
    without creating a connection. Read from the database; nothing is said when it has
    no such request or cannot be read (the Database check says why)."""
    try:
        refused = await _refused_creates(settings.database_url, site.name)
    except (sa.exc.SQLAlchemyError, OSError):
        return None
    if not refused:
        return None
    request_id, at, detail = refused[0]
    return Check(
        "Exalate create",
        False,
        f"{len(refused)} request(s) failed because Exalate refused the bot's create call, "
        f"the last #{request_id} at {at:%Y-%m-%d %H:%M} UTC: {detail} Fix that setting, "
        "then Retry them on their cards.",
    )


_Refused = tuple[int, datetime, str | None]
"""A request failed for a refused create: its id, when, and why."""


async def _refused_creates(database_url: str, site: str) -> list[_Refused]:
    """The site's requests failed for a refused create, newest first, read without
    changing anything: an SQLite file not there yet has none."""
    query: sa.Select[int, datetime, str | None] = (
        sa.select(RequestRow.id, RequestRow.updated_at, RequestRow.error_detail)
        .where(
            RequestRow.site == site,
            RequestRow.status == Status.FAILED.value,
            RequestRow.error == Problem.CREATE_REFUSED.value,
        )
        .order_by(RequestRow.updated_at.desc())
    )
    path = sqlite_file(database_url)
    if path is not None:
        if not path.exists():
            return []
        return await asyncio.to_thread(_sqlite_rows, path, query)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            return [(i, at, why) for i, at, why in await connection.execute(query)]
    finally:
        await engine.dispose()


def _sqlite_rows(path: Path, query: sa.Select[int, datetime, str | None]) -> list[_Refused]:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [(i, at, why) for i, at, why in connection.execute(query)]
    finally:
        engine.dispose()


async def _database(settings: Settings) -> Check:
    """Reachable, writable and at the newest revision, looked at without changing anything."""
    path = sqlite_file(settings.database_url)
    if path is not None:
        folder = path.parent.resolve()
        if not path.exists():
            ok = os.access(folder, os.W_OK)
            return Check(
                "Database",
                None if ok else False,
                f"{path} does not exist yet; the "
                "bot creates it at first start"
                + ("" if ok else f", but {folder} is not writable."),
            )
        if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
            return Check("Database", False, f"{path} (or its folder) is not writable.")
    try:
        if path is not None:  # one look with the standard library's driver, in a thread
            state = await asyncio.to_thread(_sqlite_state, path)
        else:
            engine = make_engine(settings.database_url)
            try:
                async with explained(settings.database_url):
                    state = await schema_state(engine)
            finally:
                await engine.dispose()
    except DatabaseProblem as problem:
        return Check("Database", False, str(problem))
    except Exception as error:  # whatever the driver says, said plainly
        return Check("Database", False, f"{type(error).__name__}: check DATABASE_URL.")
    if state.at_head:
        return Check("Database", True, f"reachable, {state.describe()}")
    if path is not None or settings.exalate_auto_migrate:
        return Check("Database", None, f"{state.describe()}; the bot upgrades it at start")
    return Check("Database", False, state.describe())


def _sqlite_state(path: Path) -> SchemaState:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return state_of(connection)
    finally:
        engine.dispose()
