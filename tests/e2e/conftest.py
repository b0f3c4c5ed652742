"""Fixtures that start the fakes and the bot, all on loopback with ephemeral ports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestServer

from bot.config import Settings, load_settings
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import FakeSlack
from storage.db import sqlite_file
from tests.e2e.harness import (
    ADMINS_GROUP,
    APPROVAL_CHANNEL,
    BOB,
    BOT_TOKEN,
    CAROL,
    JIRA_TOKEN,
    PEOPLE,
    SECRET_KEY,
    SIGNING_SECRET,
    Harness,
    serving,
)


@pytest.fixture(name="slack")
async def _slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        usergroups={ADMINS_GROUP: [CAROL]}, users=PEOPLE, channels={APPROVAL_CHANNEL}
    ) as fake:
        yield fake


@pytest.fixture(name="simulator")
def _simulator() -> Simulator:
    return Simulator(token=JIRA_TOKEN)


@pytest.fixture(name="jira_url")
async def _jira_url(simulator: Simulator) -> AsyncIterator[str]:
    async with TestServer(simulator.app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


@pytest.fixture(name="create_timeout")
def _create_timeout() -> float:
    """EXALATE_CREATE_TIMEOUT; a test parametrises it to provoke a timeout quickly."""
    return 2.0


@pytest.fixture(name="initiation")
def _initiation() -> str:
    """EXALATE_INITIATION; a test parametrises it to try assisted mode."""
    return "api"


@pytest.fixture(name="allowed_projects")
def _allowed_projects() -> str:
    """EXALATE_PROJECTS; a test parametrises it to narrow the choice."""
    return ""


@pytest.fixture(name="limits")
def _limits() -> tuple[int, int]:
    """(EXALATE_MAX_OPEN_PER_REQUESTER, EXALATE_MAX_SUBMISSIONS_PER_HOUR): generous here,
    where tests submit many requests for other reasons; the limits' tests narrow them."""
    return (1000, 1000)


@pytest.fixture(name="settings")
def _settings(
    slack: FakeSlack,
    jira_url: str,
    bot_database_url: str,
    create_timeout: float,
    initiation: str,
    allowed_projects: str,
    limits: tuple[int, int],
) -> Settings:
    return load_settings(
        slack_bot_token=BOT_TOKEN,
        slack_app_token="xapp-e2e-app-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        jira_url=jira_url,
        jira_token=JIRA_TOKEN,
        database_url=bot_database_url,
        exalate_secret_key=None if sqlite_file(bot_database_url) else SECRET_KEY,
        exalate_approval_channel=APPROVAL_CHANNEL,
        exalate_approvers=f"{BOB},{ADMINS_GROUP}",
        exalate_local_short_name="acme",
        exalate_create_timeout=create_timeout,
        jira_retries=0,  # faults injected in these tests should land; retries: test_client
        exalate_initiation=initiation,
        exalate_projects=allowed_projects,
        exalate_max_open_per_requester=limits[0],
        exalate_max_submissions_per_hour=limits[1],
    )


class Clock:
    """The bot's clock in tests: time moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="harness")
async def _harness(
    settings: Settings, slack: FakeSlack, simulator: Simulator, clock: Clock
) -> AsyncIterator[Harness]:
    async with serving(settings, slack, simulator, clock) as harness:
        yield harness


class _SignalsInstalled(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "stop_signals_installed":
            self.event.set()


@pytest.fixture(name="signals_installed")
def _signals_installed() -> Iterator[asyncio.Event]:
    """Set once a serving bot handles SIGTERM itself: sent earlier, the signal's default
    action would end the whole test run."""
    handler = _SignalsInstalled()
    logger = logging.getLogger("bot.runtime.serve")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.event
    logger.removeHandler(handler)
