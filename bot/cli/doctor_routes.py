"""The doctor's checks of each ``[[routes]]`` entry: its approvers and escalation group
resolve in Slack, its channel takes the bot's cards, and no earlier route hides it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from bot.approvals.routes import Route, Routes
from bot.cli.doctor_slack import Check, Slack, approvers_check, channel_check
from bot.cli.routes import decides, matches
from bot.config import Settings

SlackCheck = Callable[[Slack, Settings], Awaitable[Check]]


def route_checks(routes: Routes) -> list[tuple[str, SlackCheck]]:
    """One check per route, in file order, each named ``Route #n``."""
    hidden_by: dict[int, int] = {}
    for earlier, later in routes.shadowed():
        hidden_by.setdefault(later.number, earlier.number)
    return [
        (f"Route #{r.number}", functools.partial(_route, r, hidden_by.get(r.number)))
        for r in routes.routes
    ]


async def _route(route: Route, hidden_by: int | None, slack: Slack, settings: Settings) -> Check:
    name = f"Route #{route.number}"
    place = f"[[routes]] #{route.number}"
    rule = route.rule
    looks: list[Callable[[], Awaitable[Check]]] = [
        functools.partial(approvers_check, slack, name, rule.approvers, f"{place} approvers")
    ]
    if rule.escalate_to:
        escalation = f"{place} escalate_to"
        looks.append(functools.partial(approvers_check, slack, name, rule.escalate_to, escalation))
    if rule.channel:
        looks.append(
            functools.partial(channel_check, slack, name, rule.channel, f"{place} channel")
        )
    for look in looks:
        if (check := await look()).ok is not True:
            return check
    if hidden_by is not None:
        return Check(
            name,
            None,
            f"warning: never applies: route #{hidden_by} comes first and matches every "
            f"request this one would ({matches(route)}); narrow #{hidden_by} or move this "
            "one above it.",
        )
    return Check(
        name, True, f"{matches(route)}: {decides(rule, settings.exalate_approval_channel)}"
    )
