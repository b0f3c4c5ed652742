"""Slack listeners. ``register`` is the one call the composition root makes.

The listeners are plain module-level functions: ``commands`` (``/exalate``), ``views``
(form submissions), ``actions`` (buttons), ``incident_actions`` (an incident card's
controls), ``options`` (the project select) and ``home`` (App Home). The parts they
need reach them through Bolt's ``context`` (``context.BotParts``), and buttons and
forms share one skeleton (``guard.guard``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.service import Services
from handlers import actions, commands, home, incident_actions, options, views
from handlers.context import BotParts
from handlers.ids import COMMAND, Action, View

Listener = Callable[..., Coroutine[Any, Any, None]]


def register(app: AsyncApp, services: Services, track: Callable[[Listener], Listener]) -> None:
    """Hand ``services`` to every listener through the context, and install each
    listener as ``track`` wraps it (the runtime's: answered at once, and waited for at
    shutdown; ``bot.runtime.answer_first``)."""
    app.use(BotParts(services))
    app.command(COMMAND)(track(commands.exalate))
    app.view(View.REQUEST.value)(track(views.submit_request))
    app.view(View.REJECT.value)(track(views.submit_rejection))
    app.view(View.PASTE.value)(track(views.submit_code))
    app.view(View.HAND_OVER.value)(track(views.submit_hand_over))
    app.action(Action.APPROVE.value)(track(actions.approve))
    app.action(Action.RETRY.value)(track(actions.retry))
    app.action(Action.REJECT.value)(track(actions.reject))
    app.action(Action.RESEND.value)(track(actions.resend_code))
    app.action(Action.CANCEL.value)(track(actions.cancel))
    app.action(Action.REREQUEST.value)(track(actions.request_again))
    app.action(Action.PASTE_CODE.value)(track(actions.paste_code))
    app.action(Action.SHOW_CODE.value)(track(actions.show_code))
    app.action(Action.HAND_OVER.value)(track(actions.hand_over))
    app.action(Action.INCIDENT_ACK.value)(track(incident_actions.acknowledge_incidents))
    app.action(Action.INCIDENT_SNOOZE.value)(track(incident_actions.snooze_incidents))
    app.action(Action.INCIDENT_OPEN.value)(track(incident_actions.open_in_exalate))
    app.options(Action.PROJECT.value)(track(options.project_options))
    app.event("app_home_opened")(track(home.home_opened))
