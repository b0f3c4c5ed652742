"""Slack listeners. ``register`` is the one call the composition root makes."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.service import ConnectionService
from handlers import actions, commands, options, views


def register(app: AsyncApp, service: ConnectionService, *, local_short_name: str) -> None:
    """Install every listener on ``app``."""
    commands.register(app, service, local_short_name)
    views.register(app, service)
    actions.register(app, service)
    options.register(app, service)
