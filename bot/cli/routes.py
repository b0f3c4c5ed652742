"""``exalate-bot routes check``: which route decides a request for a site and project,
who may approve it, how many approvals it needs, and where its card goes."""

from __future__ import annotations

from datetime import timedelta

from bot.approvals.routes import Route, Rule
from bot.config import Settings, SettingsError


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def matches(route: Route) -> str:
    """What a route matches, in words."""
    projects = ", ".join(route.projects) if route.projects else "every project"
    sites = f"site {', '.join(route.sites)}" if route.sites else "every site"
    return f"{projects} on {sites}"


def decides(rule: Rule, default_channel: str) -> str:
    """Who decides under ``rule`` and where, in one line."""
    who = ", ".join(rule.approvers)
    count = "1 approval" if rule.approvals == 1 else f"{rule.approvals} distinct approvals"
    line = f"{count} from {who}; card to {rule.channel or default_channel}"
    if rule.escalate_after is not None:
        line += f"; after {_duration(rule.escalate_after)} also {', '.join(rule.escalate_to)}"
    return line


def explain(settings: Settings, site: str | None, project: str) -> str:
    """The answer to ``routes check``: the route that applies, or the default, in lines."""
    names = [s.name for s in settings.sites]
    if site is None:
        if len(names) > 1:
            raise SettingsError(f"Several sites are configured; say which: --site {names[0]}")
        site = names[0]
    if site not in names:
        raise SettingsError(f"There is no site named {site}; the sites are: {', '.join(names)}.")
    project = project.strip().upper()
    routes = settings.routes
    route = routes.route_for(site, project)
    rule = route.rule if route is not None else routes.default
    if route is None:
        lines = [
            f"No route matches {project} on site {site}: the default approvers decide "
            "(EXALATE_APPROVERS, EXALATE_APPROVAL_CHANNEL)."
        ]
    else:
        lines = [f"Route #{route.number} ({matches(route)}) decides {project} on site {site}."]
    lines += [
        f"Approvers: {', '.join(rule.approvers)} (user groups are looked up at every click)",
        f"Approvals needed: {rule.approvals}, each from a different approver; the requester "
        "never counts, and one rejection ends the request",
        f"Card goes to: {rule.channel or settings.exalate_approval_channel}",
    ]
    if rule.escalate_after is not None:
        lines.append(
            f"Escalation: after {_duration(rule.escalate_after)} undecided, "
            f"{', '.join(rule.escalate_to)} may decide too, and is told in the channel"
        )
    else:
        lines.append("Escalation: none")
    return "\n".join(lines)
