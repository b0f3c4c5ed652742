"""The composition root: builds every part from ``Settings`` and tears them down.

This is the only module that knows every concrete class. Importing it connects to
nothing; ``Runtime.start`` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

import handlers
from bot.about import bot_version
from bot.approvers import ApproverPolicy
from bot.config import Settings, SettingsError, misspelt_variables
from bot.metrics import Metrics, SyncHealth
from bot.runtime.answer_first import InFlight
from bot.runtime.http_gate import slack_gate
from bot.runtime.jobs import LifecycleJobs
from bot.runtime.sites import build_sites, refuse_orphans
from bot.service import Services, SiteHealth, build_services, utc_now
from bot.site_config import config_path, environment, loosely_writable
from bot.vault import Vault, key_file_for, load_or_create_key
from handlers.outbound import SlackGroupDirectory, SlackNotifier, SlackPeople
from handlers.outbound.incident_notifier import SlackIncidentNotifier
from handlers.outbound.probe import SlackProbe
from storage import (
    RequestRepository,
    SubmissionLimits,
    explained,
    make_engine,
    make_sessionmaker,
    prepare_schema,
)
from storage.db import require_directory, sqlite_file
from storage.replicas import Identity, Replicas

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
HEALTH_TIMEOUT = 2.0  # seconds a health probe may wait on the database

# A replica silent this long is gone: two poll intervals, at most half a minute, and at
# least ten seconds, so a pause in a live process (a slow database, a long collection)
# does not make it look gone.
REPLICA_TTL_SECONDS = (10.0, 30.0)
# A stop, from SIGTERM to exit, stays within STOP_WITHIN seconds whatever Slack, Jira or
# the database do: Docker kills after 10. Listeners get SHUTDOWN_GRACE_SECONDS to finish;
# what is cut short (a create call still waiting for Exalate) is settled at the next
# start, as after a crash. Each other step of the stop gets STEP_SECONDS.
STOP_WITHIN = 8.0
SHUTDOWN_GRACE_SECONDS = 3.0
STEP_SECONDS = 0.5


async def _finish_or_cancel(task: asyncio.Task[None], seconds: float, step: str) -> None:
    """Let ``task`` end within ``seconds``, else cancel it and let it unwind (bounded)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        log.warning("shutdown_cut_short step=%s after=%ss", step, seconds)
        task.cancel()
        await asyncio.wait({task}, timeout=STEP_SECONDS)
    elif not task.cancelled() and (error := task.exception()) is not None:
        log.warning("shutdown_step_failed step=%s kind=%s", step, type(error).__name__)


def load_vault(settings: Settings) -> Vault:
    """The key from EXALATE_SECRET_KEY, or a key file beside an SQLite database."""
    if settings.exalate_secret_key is not None:
        return Vault(settings.exalate_secret_key.get_secret_value().encode())
    database = sqlite_file(settings.database_url)
    if database is None:
        raise SettingsError(
            "EXALATE_SECRET_KEY is missing: it is required when DATABASE_URL is not an "
            "SQLite file (there is no place beside the database for a key file)."
        )
    require_directory(database)  # before a key file is made beside a database mistyped
    return Vault(load_or_create_key(key_file_for(database)))


_SLACK_CLIENT_LOG = logging.getLogger("slack_sdk.web.bot_client")
_SLACK_CLIENT_LOG.setLevel(logging.INFO)


def make_slack_client(
    settings: Settings, session: aiohttp.ClientSession, *, ride_out_rate_limits: bool = True
) -> AsyncWebClient:
    """The Web API client: one retry on a dropped connection, and, for the listeners,
    Slack's 429s ridden out. The outbox's client gets the 429 instead: it waits the
    ``Retry-After`` itself, by rescheduling the message rather than sleeping on it.

    It shares ``session``: without one, slack_sdk opens a new connection pool (and a new
    TCP connection) for every call, which under load costs more than the calls. Its
    logger has a level of its own: at the default (NOTSET) slack_sdk formats a DEBUG line
    with the whole request for every call, modal and all, which ``bot.log`` then drops.
    """
    retries: list[AsyncRetryHandler] = [AsyncConnectionErrorRetryHandler()]
    if ride_out_rate_limits:
        retries.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return AsyncWebClient(
        logger=_SLACK_CLIENT_LOG,
        session=session,
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=retries,
    )


async def open_database(settings: Settings) -> AsyncEngine:
    """The database, its schema upgraded where allowed: always on SQLite (one file, one
    owner), on PostgreSQL with EXALATE_AUTO_MIGRATE (``run --migrate``)."""
    engine = make_engine(settings.database_url)
    upgrade = settings.exalate_auto_migrate or engine.dialect.name == "sqlite"
    try:
        async with explained(settings.database_url):
            await prepare_schema(engine, upgrade=upgrade)
    except BaseException:
        await engine.dispose()
        raise
    return engine


def replica_ttl(settings: Settings) -> timedelta:
    shortest, longest = REPLICA_TTL_SECONDS
    return timedelta(seconds=min(max(2 * settings.exalate_poll_interval, shortest), longest))


def stuck_after(settings: Settings) -> timedelta:
    """Longer than any initiation can take: every read retried, then the create."""
    reads = settings.jira_timeout * (settings.jira_retries + 1) * 2
    return timedelta(seconds=reads + settings.exalate_create_timeout + 120)


@dataclass
class Runtime:
    """Everything a running bot holds, so it can all be closed in one place."""

    settings: Settings
    engine: AsyncEngine
    http: aiohttp.ClientSession
    services: Services
    app: AsyncApp
    inflight: InFlight
    jobs: LifecycleJobs
    repository: RequestRepository
    replicas: Replicas
    metrics: Metrics
    policy: ApproverPolicy
    socket_mode: AsyncSocketModeHandler | None = None
    _outbox_task: asyncio.Task[None] | None = None
    _jobs_task: asyncio.Task[None] | None = None
    _heartbeat_task: asyncio.Task[None] | None = None
    _leaving: asyncio.Event = field(default_factory=asyncio.Event)
    _silent: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the outbox is to stop sending."""

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        http_mode: bool,
        clock: Callable[[], datetime] = utc_now,
    ) -> Runtime:
        """Build and connect every part; nothing is served and no job runs yet.

        The schema is upgraded first where allowed: always on SQLite (one file, one
        owner), on PostgreSQL with EXALATE_AUTO_MIGRATE (``run --migrate``). Raises
        DatabaseProblem or SchemaBehind, each one line for the person starting it.
        """
        signing_secret = settings.require_http_mode() if http_mode else None
        for config in settings.sites:
            if config.credentials_in_clear:
                log.warning(
                    "jira_url_in_clear site=%s: %s crosses the network unencrypted; use https://",
                    config.name,
                    config.credentials_from,
                )
        for name, meant in misspelt_variables(environment()):
            log.warning("setting_unknown name=%s; did you mean %s?", name, meant)
        sites_file = config_path(settings.exalate_config)
        if sites_file is not None and loosely_writable(sites_file):
            log.warning("sites_file_writable_by_others path=%s; run chmod go-w on it", sites_file)
        vault = load_vault(settings)
        engine = await open_database(settings)
        sessions = make_sessionmaker(engine)
        replicas = Replicas(
            sessions, Identity.of_this_process(), ttl=replica_ttl(settings), clock=clock
        )
        await replicas.join()
        inflight = InFlight()
        # Requests made after a listener's ack give way to answers still pending.
        http = aiohttp.ClientSession(trace_configs=[inflight.trace_config()])
        metrics = Metrics()
        client = make_slack_client(settings, http)
        repository = RequestRepository(sessions, pause=inflight.give_way)
        try:
            sites = build_sites(settings, http, metrics)
            await refuse_orphans(repository, sites)
        except BaseException:
            await http.close()
            await replicas.leave()
            await engine.dispose()
            raise
        policy = ApproverPolicy(
            settings.routes,
            SlackGroupDirectory(client),
            clock=lambda: clock().timestamp(),  # the runtime's clock: tests move it
        )
        # What the outbox's sender calls: a 429 is its to wait out, by rescheduling.
        quiet_client = make_slack_client(settings, http, ride_out_rate_limits=False)
        services = build_services(
            repository=repository,
            queue=repository.outbox,
            sites=sites,
            vault=vault,
            policy=policy,
            notifier=SlackNotifier(
                quiet_client,
                settings.exalate_approval_channel,
                name_sites=sites.several,
            ),
            limits=SubmissionLimits(
                max_open=settings.exalate_max_open_per_requester,
                per_hour=settings.exalate_max_submissions_per_hour,
            ),
            approval_ttl=settings.exalate_approval_ttl,
            remind_after=settings.exalate_invite_remind_after,
            stuck_after=stuck_after(settings),
            clock=clock,
            metrics=metrics,
            replicas=replicas,
            me=replicas.me.id,
            approvals=settings.exalate_approval_channel,
            people=SlackPeople(quiet_client),
            incidents=repository.incidents,
            incident_notifier=SlackIncidentNotifier(
                quiet_client,
                default_owners=tuple(settings.exalate_approvers),
                consoles={config.name: config.console for config in settings.sites},
            ),
            alerts=settings.alerts,
        )
        app = AsyncApp(
            client=client,
            signing_secret=signing_secret.get_secret_value() if signing_secret else "",
            request_verification_enabled=http_mode,
            # Listeners are run by InFlight.track, which hands Bolt each ack as it is
            # given; Bolt's own runner would check for it every 10 ms.
            process_before_response=True,
        )
        handlers.register(app, services, inflight.track)
        services.requests.warm_up()
        jobs = LifecycleJobs(
            services.lifecycle,
            replicas,
            metrics,
            services.outbox,
            interval=settings.exalate_poll_interval,
            slack=SlackProbe(client, settings.exalate_approval_channel),
            health=services.health,
        )
        repository.on_told = services.outbox.wake
        runtime = cls(
            settings,
            engine,
            http,
            services,
            app,
            inflight,
            jobs,
            repository,
            replicas,
            metrics,
            policy,
        )
        runtime._outbox_task = asyncio.create_task(services.outbox.run(runtime._silent))
        return runtime

    async def settle(self, within: float) -> int:
        """Let the listeners finish their work after the ack (within ``within`` seconds)
        and send what they left in the outbox; how many listeners still run. For the
        demo and the tests, which show or check what people were told."""
        unfinished = await self.inflight.drain(timeout=within)
        await self.services.outbox.send_due()
        return unfinished

    def start_jobs(self) -> None:
        """Run the life-cycle jobs and the heartbeat in the background until ``close``."""
        self._jobs_task = asyncio.create_task(self.jobs.run())
        self._heartbeat_task = asyncio.create_task(self.replicas.beat_until(self._leaving))

    async def close(self) -> None:
        """Stop the jobs and let running listeners finish, then release connections:
        each step bounded, so a stop never waits on a Slack, Jira or database that does
        not answer (``STOP_WITHIN``)."""
        if self._jobs_task is not None:
            self.jobs.stop()  # a tick cut short is repeated by the next start's
            jobs = _finish_or_cancel(self._jobs_task, STEP_SECONDS, "jobs")
        else:
            jobs = asyncio.sleep(0)
        unfinished, _ = await asyncio.gather(
            self.inflight.drain(timeout=SHUTDOWN_GRACE_SECONDS), jobs
        )
        if unfinished:
            log.warning("shutdown_with_unfinished_work listeners=%s", unfinished)
            try:
                await asyncio.wait_for(self.inflight.cut_short(), STEP_SECONDS)
            except TimeoutError:
                log.warning("shutdown_cut_short step=listeners after=%ss", STEP_SECONDS)
        self._silent.set()  # what is left in the outbox waits for the next replica to start
        if self._outbox_task is not None:
            await _finish_or_cancel(self._outbox_task, STEP_SECONDS, "outbox")
        await self.policy.close()
        await self.http.close()
        self._leaving.set()  # beating until now: the others wait for the clicks to finish
        if self._heartbeat_task is not None:
            await _finish_or_cancel(self._heartbeat_task, STEP_SECONDS, "heartbeat")
        try:
            async with asyncio.timeout(STEP_SECONDS):
                await self.replicas.leave()
        except Exception as error:  # the others find out when its heartbeat stops
            log.warning("leave_failed kind=%s", type(error).__name__)
        try:
            async with asyncio.timeout(STEP_SECONDS):
                await self.engine.dispose()
        except TimeoutError:
            log.warning("shutdown_cut_short step=database after=%ss", STEP_SECONDS)

    def web_app(self, *, probes: bool = True) -> web.Application:
        """Bolt's endpoint at ``POST /slack/events``, and the probes and ``/metrics``
        unless they are served on a port of their own."""
        application = self.app.web_app(path=SLACK_EVENTS_PATH)
        secret = self.settings.require_http_mode().get_secret_value()
        gate = slack_gate(secret, SLACK_EVENTS_PATH)
        application.middlewares[:0] = [gate, self.inflight.answer_first()]  # type: ignore[list-item]
        if probes:
            self.add_probes(application)
        return application

    def add_probes(self, application: web.Application) -> None:
        """``GET /healthz``, ``GET /readyz`` and ``GET /metrics`` on ``application``."""
        application.router.add_get("/healthz", self._healthz)
        application.router.add_get("/readyz", self._readyz)
        application.router.add_get("/metrics", self._metrics)

    async def health(self) -> dict[str, object]:
        """Liveness: the process itself. It answers, so its event loop turns; nothing
        it depends on is asked, because restarting every replica fixes no database or
        Slack outage (``readiness`` says what is wrong with those)."""
        return {"ok": True, "version": bot_version()}

    async def readiness(self) -> dict[str, object]:
        """Whether this replica can do its work now, and what stands in the way: its
        database (read, and the last write went through), its Slack connection and
        token and the cards' channel, each site's Jira (with Exalate) when last asked,
        and whether it refused the last create call for the credentials. A supervisor
        sends no work to a replica that cannot do it. A retired site is reported, never
        waited for: its node may be switched off for good."""
        database = await self._database_readable()
        writable = self.repository.last_write_error is None
        socket: bool | None = None
        if self.socket_mode is not None:
            socket = bool(await self.socket_mode.client.is_connected())
        sites = list(self.services.sites)
        answers = [site.health.last_answer for site in sites]
        last = None if None in answers else min(a for a in answers if a is not None)
        slack = self.services.outbox.health
        try:
            parked = await self.repository.outbox.parked()
        except Exception:  # the database: ``database_reachable`` says so already
            parked = {}
        open_sites = self.services.sites.open()
        reachable = all(site.health.reachable is True for site in open_sites)
        creating = all(site.create_refused is None for site in open_sites)
        ready = (
            database and writable and socket is not False and reachable and creating
        ) and slack.ready
        return {
            "ready": ready,
            "database_reachable": database,
            "database_writable": writable,
            "last_write_error": self.repository.last_write_error,
            "socket_mode_connected": socket,
            "last_successful_poll": last.isoformat() if last else None,
            "jira": _all_of(site.health for site in sites).as_json(),
            "sites": {site.name: site.health_json() for site in sites},
            "slack": slack.as_json() | {"parked": parked},
        }

    async def _database_readable(self) -> bool:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                async with self.engine.connect() as connection:
                    # Reads the bot's own table: "SELECT 1" succeeds even on a file that
                    # is no database at all.
                    await connection.exec_driver_sql("SELECT id FROM connection_request LIMIT 1")
        except Exception:
            return False
        return True

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response(await self.health())

    async def _readyz(self, _request: web.Request) -> web.Response:
        readiness = await self.readiness()
        return web.json_response(readiness, status=200 if readiness["ready"] else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        """Always answers: without the database, every series but the requests'."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                states: (
                    dict[tuple[str, str], int] | None
                ) = await self.repository.count_by_site_and_status()
                health = SyncHealth(
                    await self.repository.incidents.views(),
                    await self.repository.incidents.open_counts(),
                )
        except Exception as error:
            log.warning("metrics_without_database kind=%s", type(error).__name__)
            states, health = None, None
        text = self.metrics.render(states, listeners_running=self.inflight.running, health=health)
        return web.Response(text=text, headers={"Content-Type": Metrics.CONTENT_TYPE})


def _all_of(healths: Iterable[SiteHealth]) -> SiteHealth:
    """Every site's health as one, for ``jira`` (what a single-site bot reported):
    reachable only when each site is, the oldest answer, the first site's error."""
    healths = list(healths)
    reach = [h.reachable for h in healths]
    answers = [h.last_answer for h in healths]
    return SiteHealth(
        reachable=False if False in reach else (None if None in reach else True),
        last_answer=None if None in answers else min(a for a in answers if a is not None),
        last_error=next((h.last_error for h in healths if h.last_error), None),
    )
