"""Slack listeners. ``register`` is the one call the composition root makes.

The parts the listeners need reach them through Bolt's ``context``
(``payloads.BotParts``).
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.service import ConnectionService
from handlers import actions, commands, home, options, views
from handlers.ids import COMMAND, Action
from handlers.inflight import InFlight
from handlers.payloads import BotParts


def register(
    app: AsyncApp, service: ConnectionService, inflight: InFlight, *, local_short_name: str
) -> None:
    """Hand ``service`` and ``local_short_name`` to every listener through the context,
    and install each listener, tracked by ``inflight`` so that shutdown waits for it."""
    app.use(BotParts(service, local_short_name))
    track = inflight.track
    app.command(COMMAND)(track(commands.exalate))
    views.register(app, service, inflight)
    actions.register(app, service, inflight)
    app.options(Action.PROJECT.value)(track(options.project_options))
    app.event("app_home_opened")(track(home.home_opened))
