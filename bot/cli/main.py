"""The ``exalate-bot`` command.

```
exalate-bot [run] [--health-port N]        Socket Mode (needs SLACK_APP_TOKEN)
exalate-bot run --http [--host H] [--port N] [--health-port N]   HTTP mode: POST /slack/events
exalate-bot run [--http …] --simulated-jira      either, against the built-in simulator
exalate-bot run … --migrate                    upgrade a PostgreSQL schema first
exalate-bot migrate [--copy-from URL]          upgrade the database schema (and copy the
                                               history of another database into it), exit
exalate-bot migrate --current | --sql          where the schema stands, or the SQL an
                                               upgrade would run; changes nothing
exalate-bot demo                               the whole flow here, no Slack or Jira needed
exalate-bot doctor [--http]                    one line per check, non-zero on any failure
exalate-bot audit export [--format csv|json] [--since DATE]   print the audit trail
exalate-bot routes check [--site S] --project KEY   who decides such a request, and where
exalate-bot simulator [--host H] [--port N] [--token T]   an Exalate-on-Jira simulator
exalate-bot --version
```

Exit codes: 0 done, 1 a failed check or an unexpected error, 2 refused (a restart would
repeat it), 3 the database did not answer (``EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from bot.about import bot_version

# Only the standard library at the top: `exalate-bot --help` must answer at once. Each
# command imports what it needs when it runs.

log = logging.getLogger("bot")

# Exit statuses a supervisor can act on (systemd's RestartPreventExitStatus).
FAILED = 1
"""A check failed (``doctor``), or an unexpected error: its traceback is in the log."""
REFUSED = 2
"""Settings it cannot use, or a schema behind this version: a restart would only repeat it."""
DATABASE_UNAVAILABLE = 3
"""The database did not answer (or its driver is missing): a restart may find it back."""
EXIT_CODES = f"""exit codes:
  0  done (for run: stopped by SIGTERM or SIGINT)
  {FAILED}  a check failed (doctor), or an unexpected error (its traceback is logged)
  {REFUSED}  refused: settings it cannot use, a schema behind this version, a port in use;
     restarting would only repeat it
  {DATABASE_UNAVAILABLE}  the database did not answer: restarting may find it back
"""


def parse_since(text: str) -> datetime:
    """``2026-11-01`` or ``2026-11-01T09:30`` (UTC unless an offset is given).

    Refuses with ArgumentTypeError: argparse prints only that error's text, where for
    any other it prints "invalid parse_since value".
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date such as 2026-11-01 or 2026-11-01T09:30"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
) -> argparse.ArgumentParser:
    """A sub-command, with its one-line summary in the list and its description and the
    exit codes in its own ``--help``."""
    return commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exalate-bot",
        description="Slack bot that requests, approves and initiates private Exalate "
        "connections. With no command it runs the bot in Socket Mode, as `exalate-bot run`.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"exalate-bot {bot_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = _command(
        commands,
        "run",
        "run the bot (Socket Mode unless --http); the default command",
        "Run the bot until SIGTERM or SIGINT: in Socket Mode (SLACK_APP_TOKEN), or with "
        "--http serving Slack's requests at POST /slack/events (SLACK_SIGNING_SECRET).",
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
    run.add_argument(
        "--max-connections",
        type=int,
        default=900,
        help="HTTP mode: connections served at once, on both ports (default: %(default)s; "
        "fewer if the open-files limit leaves no room for them)",
    )
    migrate = _command(
        commands,
        "migrate",
        "upgrade the database in DATABASE_URL to this version",
        "Upgrade the schema of the database in DATABASE_URL to this version's, then exit. "
        "SQLite is also upgraded at every start; PostgreSQL only here or with run --migrate.",
    )
    migrate_only = migrate.add_mutually_exclusive_group()
    migrate_only.add_argument(
        "--copy-from",
        metavar="URL",
        help="then copy every request and audit event of this database (e.g. "
        "sqlite+aiosqlite:///exalate-bot.db, upgraded first) into DATABASE_URL, which "
        "must hold none yet",
    )
    migrate_only.add_argument(
        "--current",
        action="store_true",
        help="only print the database's revision and this version's newest; change nothing",
    )
    migrate_only.add_argument(
        "--sql",
        action="store_true",
        help="only print the SQL that upgrading the database would run; change nothing "
        "(on SQLite, a revision that copies a table cannot be written out: exit 2)",
    )
    _command(
        commands,
        "demo",
        "the whole flow on this machine, no Slack or Jira needed",
        "Run a request from the form to the partner's acceptance against the built-in "
        "Slack emulator and Exalate simulator, printing each step. Needs no settings.",
    )
    doctor = _command(
        commands,
        "doctor",
        "check settings, Slack, Jira, Exalate, database",
        "One line per check, ✓, ✗ (with how to fix it) or ! (could not be checked, and "
        "why): the settings, Slack's token, scopes, channels and approvers, each route, "
        "each site's Jira and Exalate, the database and the files' modes.",
    )
    doctor.add_argument("--http", action="store_true", help="check for HTTP mode")
    audit = _command(
        commands,
        "audit",
        "the audit trail",
        "The audit trail: every transition and event of every request, who and when.",
    )
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    export = _command(
        audit_commands,
        "export",
        "print every transition, oldest first",
        "Print the audit trail of DATABASE_URL, oldest first, as CSV or JSON.",
    )
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
    routing = _command(
        commands,
        "routes",
        "the routes of approvals in exalate-bot.toml",
        "The [[routes]] of exalate-bot.toml: who decides which request.",
    )
    routes_commands = routing.add_subparsers(
        dest="routes_command", metavar="COMMAND", required=True
    )
    check = _command(
        routes_commands,
        "check",
        "which route decides a request, who approves, how many, and where",
        "Print the route that decides a request for --site and --project (or that the "
        "default approvers do), its approvers, the approvals needed, the card's channel "
        "and the escalation.",
    )
    check.add_argument("--site", help="the site's name (needed when there are several)")
    check.add_argument("--project", required=True, help="the incoming Jira project key")
    simulator = _command(
        commands,
        "simulator",
        "serve an Exalate-on-Jira simulator",
        "Serve the Exalate-on-Jira simulator the tests and the demo use, for trying the "
        "bot without a Jira: point JIRA_URL at it (or use run --simulated-jira).",
    )
    simulator.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    simulator.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    simulator.add_argument("--token", default=None, help="accept only this Bearer token")
    return parser


async def _serve_simulator(host: str, port: int, token: str | None) -> None:
    from bot.sandbox.exalate_simulator import Simulator, serve

    runner = await serve(Simulator(token=token), host, port)
    log.info("simulator_serving url=http://%s:%s", host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _doctor(http_mode: bool) -> int:
    """Print one line per check; 1 if any failed."""
    from bot.cli.doctor import run_checks
    from bot.config import SettingsError, load_settings, misspelt_variables
    from bot.site_config import environment

    try:  # as `run` would read them, in the mode checked
        settings = load_settings("http" if http_mode else "socket")
    except SettingsError as error:
        print(f"✗ Settings: {error}", flush=True)  # noqa: T201
        return 1
    # Each line as soon as it is known: some checks wait on the network.
    print("✓ Settings: valid", flush=True)  # noqa: T201
    for name, meant in misspelt_variables(environment()):
        print(f"! Settings: {name} is not a setting; did you mean {meant}?", flush=True)  # noqa: T201
    failed = False
    async for check in run_checks(settings, http_mode=http_mode):
        print(check.line(), flush=True)  # noqa: T201
        failed |= check.ok is False
    return 1 if failed else 0


async def _migrate(copy_from: str | None, *, current: bool = False, sql: bool = False) -> str:
    """Upgrade the database in DATABASE_URL, then copy ``copy_from``'s history into it;
    what was done, one line each. With ``current`` or ``sql``, where it stands or the SQL
    upgrading it would run: an operator looks before upgrading, so nothing changes."""
    from bot.config import SettingsError, load_database_settings
    from bot.database_url import check_database_url
    from storage import explained, make_engine
    from storage.copy import copy_history
    from storage.db import describe, sqlite_file
    from storage.schema import state_at, upgrade_sql

    url = load_database_settings().database_url
    if current or sql:
        state = await state_at(url)
        if sql:
            return upgrade_sql(url, state)
        return (
            f"Current revision: {state.current or 'none'}\n"
            f"Newest revision: {state.head}\n"
            f"{describe(url)} is {state.describe()}."
        )
    lines = [await _upgrade(url)]
    if copy_from is not None:
        try:
            check_database_url(copy_from)
        except ValueError as error:
            raise SettingsError(f"--copy-from {error}") from None
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
    from storage import explained, make_engine, upgrade_schema
    from storage.db import describe

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
    except BrokenPipeError:  # `exalate-bot doctor | head`: the reader has what it wanted
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        code = _exit_code(error)
        if code is None:
            raise
        print(f"exalate-bot: {error}", file=sys.stderr)  # noqa: T201
        return code


def _exit_code(error: Exception) -> int | None:
    """The exit code of an error the person can act on; None for an unexpected one."""
    from bot.config import SettingsError
    from storage import DatabaseProblem, SchemaBehind
    from storage.copy import TargetNotEmpty

    if isinstance(error, SettingsError | SchemaBehind | TargetNotEmpty):
        return REFUSED
    if isinstance(error, DatabaseProblem):
        return DATABASE_UNAVAILABLE
    return None


def _main(arguments: argparse.Namespace) -> int:
    if arguments.command == "audit":
        from bot.cli.audit import export
        from bot.config import load_database_settings

        database = load_database_settings()
        output = asyncio.run(export(database.database_url, arguments.format, arguments.since))
        sys.stdout.write(output)
        return 0
    if arguments.command == "routes":
        from bot.cli import routes
        from bot.config import load_settings

        print(routes.explain(load_settings(), arguments.site, arguments.project))  # noqa: T201
        return 0
    if arguments.command == "migrate":
        from storage.schema import NoOfflineSql

        migrating = _migrate(arguments.copy_from, current=arguments.current, sql=arguments.sql)
        try:
            print(asyncio.run(migrating))  # noqa: T201
        except NoOfflineSql as error:
            print(f"exalate-bot: {error}", file=sys.stderr)  # noqa: T201
            return REFUSED
        return 0
    if arguments.command == "demo":
        from bot.cli import demo

        return asyncio.run(demo.run())
    if arguments.command == "doctor":
        return asyncio.run(_doctor(arguments.http))
    if arguments.command == "simulator":
        from bot.log import configure_logging

        configure_logging("INFO")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_simulator(arguments.host, arguments.port, arguments.token))
        return 0
    return _run(arguments)


def _exit_before_serving(_signal: int, _frame: object) -> None:
    raise SystemExit(0)


def _run(arguments: argparse.Namespace) -> int:
    """``run`` (also with no command): the bot until a signal stops it."""
    if threading.current_thread() is not threading.main_thread():
        return _serve(arguments)  # signals reach the main thread only
    # Until the event loop takes the signals over (``bot.runtime.serve.stop_signals``),
    # SIGTERM ends the process at once, cleanly: nothing is running yet. As PID 1 in a
    # container the default would be to ignore it.
    before = signal.signal(signal.SIGTERM, _exit_before_serving)
    try:
        return _serve(arguments)
    finally:
        signal.signal(signal.SIGTERM, before)


def _serve(arguments: argparse.Namespace) -> int:
    from bot.config import SettingsError, load_settings, sites_file_in_use
    from bot.log import configure_logging
    from bot.runtime.serve import run_bot, simulated_overrides

    running_command = arguments.command == "run"
    simulated = running_command and arguments.simulated_jira
    http = running_command and arguments.http
    if http and arguments.health_port == arguments.port:
        raise SettingsError(
            f"--port and --health-port are both {arguments.port}: the probes need a port "
            "of their own (or leave --health-port out to serve them beside /slack/events)."
        )
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
        max_connections=getattr(arguments, "max_connections", 900),
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_bot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
