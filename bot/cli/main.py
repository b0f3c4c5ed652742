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

from bot.cli.parser import DATABASE_UNAVAILABLE, REFUSED, command_line

# Only the standard library at the top: `exalate-bot --help` must answer at once. Each
# command imports what it needs when it runs.

log = logging.getLogger("bot")


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
    arguments = command_line().parse_args(argv)
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
