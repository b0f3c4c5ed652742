"""Slack listeners. ``register`` is the one call the composition root makes."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.service import ConnectionService
from handlers import actions, commands, home, options, views
from handlers.inflight import InFlight


def register(
    app: AsyncApp, service: ConnectionService, inflight: InFlight, *, local_short_name: str
) -> None:
    """Install every listener on ``app``, each tracked by ``inflight``."""
    commands.register(app, service, local_short_name, inflight)
    views.register(app, service, inflight)
    actions.register(app, service, inflight)
    options.register(app, service, inflight)
    home.register(app, service, inflight)
