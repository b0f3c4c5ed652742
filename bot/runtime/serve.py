"""The process around a runtime: serving HTTP mode or Socket Mode, the probes' port, the
built-in simulator for ``--simulated-jira``, signals and garbage-collector tuning.

``bot.runtime.app`` builds what runs; this module runs it until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.config import Settings, SettingsError
from bot.runtime.answer_first import AnswerFirstSocketModeHandler
from bot.runtime.app import SLACK_EVENTS_PATH, STEP_SECONDS, STOP_WITHIN, Runtime
from bot.runtime.http_limits import (
    DEFAULT_MAX_CONNECTIONS,
    SERVER_OPTIONS,
    ConnectionLimit,
    LimitedSite,
    connection_cap,
    quiet_malformed_http,
    raise_open_files_limit,
)
from bot.sandbox.exalate_simulator import Simulator, serve

log = logging.getLogger(__name__)

SOCKET_CLOSE_SECONDS = 1.0  # Slack answers a close frame at once, or not at all


@contextlib.contextmanager
def stop_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` while the block runs. Without this SIGTERM would
    kill the process mid-approval, and as PID 1 (a container) it would be ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only: whoever runs this thread stops it
        return
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.debug("stop_signals_installed")  # from here a SIGTERM stops, not kills
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def until_stopped(stop: asyncio.Event | None = None) -> None:
    """Return once ``stop`` is set, or, without one, on SIGTERM or SIGINT, so
    ``running`` can finish in-flight work and close."""
    if stop is None:
        stop = asyncio.Event()
        with stop_signals(stop):
            await stop.wait()
    else:
        await stop.wait()
    log.info("stopping: finishing work in flight")


@contextlib.asynccontextmanager
async def running(settings: Settings, *, http_mode: bool) -> AsyncIterator[Runtime]:
    """A started runtime, closed on exit however the block ends."""
    runtime = await Runtime.start(settings, http_mode=http_mode)
    # Modules, settings and clients live as long as the process: leave them out of the
    # garbage collector's full passes, which otherwise stall the loop for tens of ms.
    # Both are undone on exit, so a process that goes on (a test) is left as it was.
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    runtime.start_jobs()
    try:
        yield runtime
    finally:
        await runtime.close()
        gc.set_threshold(*thresholds)
        gc.unfreeze()


# What --simulated-jira puts in place of JIRA_URL and JIRA_TOKEN until the simulator listens
# (a sites file keeps its sites: each gets a simulator of its own). The sandbox also gets
# its own database: the real one's invitations would otherwise be compared with the
# simulator's empty list and declared gone.
SIMULATED_JIRA = {
    "jira_url": "http://127.0.0.1:1",
    "jira_token": "simulator-accepts-any-token",
    "database_url": "sqlite+aiosqlite:///exalate-bot-sandbox.db",
}


def simulated_overrides(sites_file: Path | None) -> dict[str, str]:
    """The settings ``--simulated-jira`` replaces, beside a sites file or without one."""
    if sites_file is None:
        return SIMULATED_JIRA
    return {"database_url": SIMULATED_JIRA["database_url"]}


@contextlib.asynccontextmanager
async def simulated_jira(settings: Settings) -> AsyncIterator[Settings]:
    """The built-in Exalate-on-Jira simulator on a free loopback port for each site, and
    settings that point each site at its own: the Slack side can be tried for real with
    nothing at stake."""
    async with contextlib.AsyncExitStack() as stack:
        sites = []
        for site in settings.sites:
            runner = await serve(Simulator(), "127.0.0.1", 0, access_log=False)
            stack.push_async_callback(runner.cleanup)
            url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            log.info("jira_simulator_started site=%s url=%s", site.name, url)
            sites.append(dataclasses.replace(site, jira_url=url))
        simulated = settings.model_copy(update={"jira_url": sites[0].jira_url})
        simulated._sites = tuple(sites)
        yield simulated


async def run_bot(
    settings: Settings,
    *,
    http: bool,
    host: str,
    port: int,
    health_port: int | None = None,
    use_simulator: bool = False,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Serve the bot until stopped, in HTTP or Socket Mode, against Jira or the simulator.

    SIGTERM is handled from the first moment: during the start (a Slack or database
    that does not answer yet) it cancels the start; once serving, work in flight gets
    its bounded grace. Either way the process ends within ``STOP_WITHIN`` seconds: past
    that, whatever still waits is abandoned, as a crash would (the next start settles
    it)."""
    loop = asyncio.get_running_loop()
    stop, started = asyncio.Event(), asyncio.Event()
    with stop_signals(stop):
        log.info("bot_starting mode=%s", "http" if http else "socket")
        serving = asyncio.create_task(
            _serve(
                settings,
                http,
                host,
                port,
                health_port,
                use_simulator,
                stop,
                started,
                max_connections,
            )
        )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not serving.done():
            began = loop.time()
            backstop = loop.call_later(STOP_WITHIN, _abandon, STOP_WITHIN)
            if not started.is_set():
                log.info("stopping: cancelling the start")
                serving.cancel()
            try:
                await asyncio.wait({serving})
            finally:
                backstop.cancel()
            log.info("bot_stopped after=%.1fs", loop.time() - began)
        if not serving.cancelled():
            serving.result()  # an error that ended serving on its own


def _abandon(after: float) -> None:
    """The stop's last resort: steps that did not end in time are left to the next start."""
    log.error("stop_forced after=%ss: work still waiting is left to the next start", after)
    logging.shutdown()
    os._exit(0)


async def _serve(
    settings: Settings,
    http: bool,
    host: str,
    port: int,
    health_port: int | None,
    use_simulator: bool,
    stop: asyncio.Event,
    started: asyncio.Event,
    max_connections: int,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if use_simulator:
            settings = await stack.enter_async_context(simulated_jira(settings))
        if http:
            raise_open_files_limit()  # each connection is a file: have all allowed
            await serve_http(
                settings,
                host,
                port,
                health_port,
                stop=stop,
                started=started,
                max_connections=max_connections,
            )
        else:
            await serve_socket_mode(settings, host, health_port, stop=stop, started=started)


async def serve_http(
    settings: Settings,
    host: str,
    port: int,
    health_port: int | None = None,
    *,
    stop: asyncio.Event | None = None,
    started: asyncio.Event | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """HTTP mode: serve until ``stop`` is set (without one, SIGTERM or Ctrl-C). With
    ``health_port`` the probes and ``/metrics`` are served there only, away from the
    public endpoint. ``started`` is set once it serves.

    Both ports share ``max_connections`` (fewer where the open-files limit is lower) and
    the time limits of ``bot.runtime.http_limits``: slow or idle clients cannot take
    every file descriptor, and malformed HTTP is counted, not logged request by request.
    """
    limit = ConnectionLimit(connection_cap(max_connections))
    async with running(settings, http_mode=True) as runtime:
        application = runtime.web_app(probes=health_port is None)
        application.middlewares.insert(0, limit.middleware)
        # Requests in flight at a stop are acks: a second is plenty. No access log: a
        # line per request, quoting what each client sent, is the proxy's to write; the
        # bot logs what it does, and refuses.
        runner = web.AppRunner(
            application, shutdown_timeout=STEP_SECONDS * 2, access_log=None, **SERVER_OPTIONS
        )
        await runner.setup()
        with quiet_malformed_http():
            # A deeper accept queue than aiohttp's 128: a burst of clicks must not
            # overflow it, or the kernel drops connections and clients retry a second later.
            site = LimitedSite(runner, host, port, limit, backlog=1024)
            await listen(site, host, port, "--port")
            log.info(
                "serving_http host=%s port=%s path=%s max_connections=%s",
                host,
                port,
                SLACK_EVENTS_PATH,
                limit.cap,
            )
            try:
                await serve_probes_until_stopped(
                    runtime, host, health_port, stop, started, limit=limit
                )
            finally:
                await runner.cleanup()


async def listen(site: web.BaseSite, host: str, port: int, option: str) -> None:
    """Start listening; a port in use or not ours to take is a settings error (exit 2:
    a restart would meet it again), said in one line."""
    try:
        await site.start()
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise SettingsError(
            f"Cannot listen on {host}:{port} ({reason}): another process "
            f"has that port, or it is not this user's to take; choose another {option}."
        ) from None


async def serve_probes(
    runtime: Runtime, host: str, port: int | None, limit: ConnectionLimit | None = None
) -> web.AppRunner | None:
    """``/healthz``, ``/readyz`` and ``/metrics`` on a port of their own, if one is given:
    a scraper or a supervisor then never competes with Slack's requests. With ``limit``
    (HTTP mode) its connections count against the public port's cap."""
    if port is None:
        return None
    application = web.Application()
    runtime.add_probes(application)
    if limit is None:
        probes = web.AppRunner(application, access_log=None)
        await probes.setup()
        site: web.BaseSite = web.TCPSite(probes, host, port)
    else:
        application.middlewares.append(limit.middleware)
        probes = web.AppRunner(application, access_log=None, **SERVER_OPTIONS)
        await probes.setup()
        site = LimitedSite(probes, host, port, limit)
    await listen(site, host, port, "--health-port")
    log.info("serving_probes host=%s port=%s", host, port)
    return probes


async def serve_probes_until_stopped(
    runtime: Runtime,
    host: str,
    port: int | None,
    stop: asyncio.Event | None = None,
    started: asyncio.Event | None = None,
    *,
    limit: ConnectionLimit | None = None,
) -> None:
    """Serve the probes (on ``port``, if given) until stopped."""
    probes = await serve_probes(runtime, host, port, limit)
    if started is not None:
        started.set()
    try:
        await until_stopped(stop)
    finally:
        if probes is not None:
            await probes.cleanup()


async def connect_socket_mode(runtime: Runtime) -> AsyncSocketModeHandler:
    """Open the Socket Mode WebSocket for ``runtime``; the caller closes the handler."""
    app_token = runtime.settings.require_socket_mode()
    handler = AnswerFirstSocketModeHandler(
        runtime.app, app_token.get_secret_value(), runtime.inflight
    )
    await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
    runtime.socket_mode = handler
    return handler


async def close_socket_mode(handler: AsyncSocketModeHandler) -> None:
    """Close the WebSocket within ``SOCKET_CLOSE_SECONDS``, then let go of it anyway.

    slack_sdk's close sends a close frame and waits for Slack's answer up to aiohttp's
    10 s; a server that is busy, or a network that is gone, never answers, and a stop
    would take longer than Docker's 10 s grace. Past the bound the client's tasks are
    stopped and its HTTP session closed, which closes the socket beneath it.
    """
    try:
        async with asyncio.timeout(SOCKET_CLOSE_SECONDS):
            await handler.close_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
    except TimeoutError:
        log.warning("socket_mode_close_unanswered after=%ss", SOCKET_CLOSE_SECONDS)
        client = handler.client  # finish what the cut-short close would have done
        for task in (
            client.message_processor,
            client.current_session_monitor,
            client.message_receiver,
        ):
            if task is not None:
                task.cancel()
        await client.aiohttp_client_session.close()


async def serve_socket_mode(
    settings: Settings,
    host: str,
    health_port: int | None,
    *,
    stop: asyncio.Event | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """Socket Mode: one outbound WebSocket to Slack, no inbound URL needed.

    ``health_port``, if given, serves the probes and ``/metrics`` for a supervisor.
    """
    async with running(settings, http_mode=False) as runtime:
        handler = await connect_socket_mode(runtime)
        log.info("socket_mode_connected")
        try:
            await serve_probes_until_stopped(runtime, host, health_port, stop, started)
        finally:
            await close_socket_mode(handler)
