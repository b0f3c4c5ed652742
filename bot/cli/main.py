"""The ``exalate-bot`` command.

```
exalate-bot [run] [--health-port N]        Socket Mode (needs SLACK_APP_TOKEN)
exalate-bot run --http [--host H] [--port N] [--health-port N]   HTTP mode: POST /slack/events
exalate-bot run [--http …] --simulated-jira      either, against the built-in simulator
exalate-bot run … --migrate                    upgrade a PostgreSQL schema first
exalate-bot migrate [--copy-from URL]          upgrade the database schema (and copy the
                                               history of another database into it), exit
exalate-bot demo                               the whole flow here, no Slack or Jira needed
exalate-bot doctor [--http]                    one line per check, non-zero on any failure
exalate-bot audit export [--format csv|json] [--since DATE]   print the audit trail
exalate-bot routes check [--site S] --project KEY   who decides such a request, and where
exalate-bot simulator [--host H] [--port N] [--token T]   an Exalate-on-Jira simulator
```
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from bot.cli import demo, routes
from bot.cli.audit import export, parse_since
from bot.cli.doctor import run_checks
from bot.config import SettingsError, load_database_settings, load_settings, sites_file_in_use
from bot.log import configure_logging
from bot.runtime.serve import run_bot, simulated_overrides
from bot.sandbox.exalate_simulator import Simulator, serve
from storage import DatabaseProblem, SchemaBehind, explained, make_engine, upgrade_schema
from storage.copy import TargetNotEmpty, copy_history
from storage.db import describe, sqlite_file

log = logging.getLogger("bot")

# Exit statuses a supervisor can act on (systemd's RestartPreventExitStatus).
REFUSED = 2
"""Settings it cannot use, or a schema behind this version: a restart would only repeat it."""
DATABASE_UNAVAILABLE = 3
"""The database did not answer (or its driver is missing): a restart may find it back."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exalate-bot",
        description="Slack bot that requests, approves and initiates private Exalate "
        "connections. With no command it runs the bot in Socket Mode, as `exalate-bot run`.",
    )
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser(
        "run", help="run the bot (Socket Mode unless --http); the default command"
    )
    run.add_argument(
        "--http",
        action="store_true",
        help="serve Slack's requests at POST /slack/events instead of Socket Mode",
    )
    run.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 - Slack must reach HTTP mode from outside
        help="address to bind for HTTP mode and --health-port (default: %(default)s, "
        "every interface)",
    )
    run.add_argument(
        "--port", type=int, default=3000, help="HTTP mode: port (default: %(default)s)"
    )
    run.add_argument(
        "--health-port",
        type=int,
        default=None,
        help="serve /healthz, /readyz and /metrics on this port only (recommended; "
        "default: none, beside /slack/events in HTTP mode, not at all in Socket Mode)",
    )
    run.add_argument(
        "--migrate",
        action="store_true",
        help="upgrade the PostgreSQL schema before starting (as EXALATE_AUTO_MIGRATE=1); "
        "SQLite is always upgraded",
    )
    run.add_argument(
        "--simulated-jira",
        action="store_true",
        help="use the built-in Exalate-on-Jira simulator instead of JIRA_URL: a safe sandbox",
    )
    migrate = commands.add_parser(
        "migrate", help="upgrade the database in DATABASE_URL to this version"
    )
    migrate.add_argument(
        "--copy-from",
        metavar="URL",
        help="then copy every request and audit event of this database (e.g. "
        "sqlite+aiosqlite:///exalate-bot.db, upgraded first) into DATABASE_URL, which "
        "must hold none yet",
    )
    commands.add_parser("demo", help="the whole flow on this machine, no Slack or Jira needed")
    doctor = commands.add_parser("doctor", help="check settings, Slack, Jira, Exalate, database")
    doctor.add_argument("--http", action="store_true", help="check for HTTP mode")
    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    export = audit_commands.add_parser("export", help="print every transition, oldest first")
    export.add_argument(
        "--format",
        choices=("csv", "json"),
        default="csv",
        help="csv: one row per transition, with a header; json: a list of objects "
        "(default: %(default)s)",
    )
    export.add_argument(
        "--since",
        type=parse_since,
        metavar="DATE",
        help="only events from this date or time on, e.g. 2026-11-01 or 2026-11-01T09:30 "
        "(UTC unless an offset is given; default: all)",
    )
    routing = commands.add_parser("routes", help="the routes of approvals in exalate-bot.toml")
    routes_commands = routing.add_subparsers(dest="routes_command", required=True)
    check = routes_commands.add_parser(
        "check", help="which route decides a request, who approves, how many, and where"
    )
    check.add_argument("--site", help="the site's name (needed when there are several)")
    check.add_argument("--project", required=True, help="the incoming Jira project key")
    simulator = commands.add_parser("simulator", help="serve an Exalate-on-Jira simulator")
    simulator.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    simulator.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    simulator.add_argument("--token", default=None, help="accept only this Bearer token")
    return parser


async def _serve_simulator(host: str, port: int, token: str | None) -> None:
    runner = await serve(Simulator(token=token), host, port)
    log.info("simulator_serving url=http://%s:%s", host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _doctor(http_mode: bool) -> int:
    """Print one line per check; 1 if any failed."""
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"✗ Settings: {error}")  # noqa: T201
        return 1
    print("✓ Settings: valid")  # noqa: T201
    failed = False
    async for check in run_checks(settings, http_mode=http_mode):
        print(check.line())  # noqa: T201
        failed |= check.ok is False
    return 1 if failed else 0


async def _migrate(copy_from: str | None) -> str:
    """Upgrade the database in DATABASE_URL, then copy ``copy_from``'s history into it;
    what was done, one line each."""
    url = load_database_settings().database_url
    lines = [await _upgrade(url)]
    if copy_from is not None:
        if (path := sqlite_file(copy_from)) is not None and not path.exists():
            raise SettingsError(f"--copy-from names {path}, which does not exist.")
        lines.append(await _upgrade(copy_from))
        source, target = make_engine(copy_from), make_engine(url)
        try:
            async with explained(copy_from), explained(url):
                copied = await copy_history(source, target)
        finally:
            await source.dispose()
            await target.dispose()
        lines.append(
            f"Copied {copied.requests} requests and {copied.audit_events} audit events "
            f"from {describe(copy_from)} to {describe(url)}."
        )
    return "\n".join(lines)


async def _upgrade(url: str) -> str:
    engine = make_engine(url)
    try:
        async with explained(url):
            before = await upgrade_schema(engine)
    finally:
        await engine.dispose()
    if before.at_head:
        return f"{describe(url)} is already at the newest revision ({before.head})."
    if before.before_migrations:
        return f"{describe(url)}, made before migrations, adopted and upgraded to {before.head}."
    return f"{describe(url)} upgraded from {before.current or 'empty'} to {before.head}."


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    arguments = _parser().parse_args(argv)
    try:
        return _main(arguments)
    except (SettingsError, SchemaBehind, TargetNotEmpty) as error:
        print(f"exalate-bot: {error}", file=sys.stderr)  # noqa: T201
        return REFUSED
    except DatabaseProblem as error:
        print(f"exalate-bot: {error}", file=sys.stderr)  # noqa: T201
        return DATABASE_UNAVAILABLE


def _main(arguments: argparse.Namespace) -> int:
    if arguments.command == "audit":
        database = load_database_settings()
        output = asyncio.run(export(database.database_url, arguments.format, arguments.since))
        sys.stdout.write(output)
        return 0
    if arguments.command == "routes":
        print(routes.explain(load_settings(), arguments.site, arguments.project))  # noqa: T201
        return 0
    if arguments.command == "migrate":
        print(asyncio.run(_migrate(arguments.copy_from)))  # noqa: T201
        return 0
    if arguments.command == "demo":
        return asyncio.run(demo.run())
    if arguments.command == "doctor":
        return asyncio.run(_doctor(arguments.http))
    if arguments.command == "simulator":
        configure_logging("INFO")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_simulator(arguments.host, arguments.port, arguments.token))
        return 0
    running_command = arguments.command == "run"
    simulated = running_command and arguments.simulated_jira
    http = running_command and arguments.http
    # Every setting the chosen mode needs is checked here, in one message, before the
    # simulator, a database or a key file exists. The simulator's address is known only
    # once it listens: placeholders until then.
    overrides = simulated_overrides(sites_file_in_use()) if simulated else {}
    settings = load_settings("http" if http else "socket", **overrides)
    if running_command and arguments.migrate:
        settings = settings.model_copy(update={"exalate_auto_migrate": True})
    configure_logging(settings.log_level, settings.secrets())
    serve_bot = run_bot(
        settings,
        http=http,
        host=getattr(arguments, "host", ""),
        port=getattr(arguments, "port", 0),
        health_port=getattr(arguments, "health_port", None),
        use_simulator=simulated,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_bot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
