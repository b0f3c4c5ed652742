"""The ``exalate-bot`` command's arguments, options and help, and its exit codes.
Standard library only: ``exalate-bot --help`` is answered from here without importing
any of the bot."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from bot.about import bot_version

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


def command_line() -> argparse.ArgumentParser:
    """Every sub-command with its options, as ``main`` parses them."""
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
