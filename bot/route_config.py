"""The ``[[routes]]`` of ``exalate-bot.toml``: which approvers decide which requests.

Every problem is reported with its place (``[[routes]] #2``), all at once, as the sites
are; a start with a wrong route creates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bot.approvals.routes import Route, Rule
from bot.setting_checks import (
    check_approvers,
    check_channel,
    check_project_patterns,
    parse_duration,
)


class _RouteEntry(BaseModel):
    """One ``[[routes]]`` table as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sites: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    approvers: tuple[str, ...]
    approvals: int = 1
    channel: str | None = None
    escalate_after: timedelta | None = None
    escalate_to: tuple[str, ...] = ()

    @field_validator("projects", mode="before")
    @classmethod
    def _projects(cls, value: object) -> tuple[str, ...]:
        return check_project_patterns(value)

    @field_validator("approvers", mode="before")
    @classmethod
    def _approvers(cls, value: object) -> tuple[str, ...]:
        return check_approvers(value)

    @field_validator("escalate_to", mode="before")
    @classmethod
    def _escalate_to(cls, value: object) -> tuple[str, ...]:
        return check_approvers(value)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return None if value is None else check_channel(value)

    @field_validator("escalate_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return parse_duration(str(value))
        raise ValueError("must be a duration such as 4h, 90m or 1d")


def read_routes(
    tables: object, where: str, site_names: tuple[str, ...]
) -> tuple[list[Route], list[str]]:
    """The routes the file's ``[[routes]]`` describe, and every problem found in them."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return [], [f"{where}: routes must be written as [[routes]] tables"]
    routes: list[Route] = []
    problems: list[str] = []
    for number, table in enumerate(tables, start=1):
        place = f"{where}: [[routes]] #{number}"
        try:
            entry = _RouteEntry.model_validate(table)
        except ValidationError as error:
            problems.extend(f"{place} {_says(p)}" for p in error.errors())
            continue
        wrong = _inconsistencies(entry, site_names)
        problems.extend(f"{place} {line}" for line in wrong)
        if not wrong:
            rule = Rule(
                approvers=entry.approvers,
                approvals=entry.approvals,
                channel=entry.channel,
                escalate_after=entry.escalate_after,
                escalate_to=entry.escalate_to,
                route=number,
            )
            routes.append(Route(rule, sites=entry.sites, projects=entry.projects))
    return routes, problems


def _inconsistencies(entry: _RouteEntry, site_names: tuple[str, ...]) -> list[str]:
    """What is wrong with a route whose every key is well-formed on its own."""
    problems = []
    if unknown := [s for s in entry.sites if s not in site_names]:
        problems.append(
            f"sites names {', '.join(unknown)}, which the file does not describe "
            f"(its sites: {', '.join(site_names)})"
        )
    if entry.approvals < 1:
        problems.append("approvals must be at least 1")
    people = [a for a in entry.approvers if not a.startswith("S")]
    if len(people) == len(entry.approvers) and entry.approvals > len(people):
        problems.append(
            f"approvals is {entry.approvals}, but approvers lists only {len(people)} "
            "people: the request could never be approved"
        )
    if (entry.escalate_after is None) != (not entry.escalate_to):
        problems.append("escalate_after and escalate_to go together: give both, or neither")
    return problems


def _says(problem: Mapping[str, Any]) -> str:
    """One of pydantic's problems with a route, as ``key what``."""
    key = ".".join(str(part) for part in problem["loc"] if not isinstance(part, int))
    kind = problem["type"]
    if kind == "extra_forbidden":
        return f"{key} is not a key this version knows"
    if kind == "missing":
        return f"{key} is missing" + (": a route needs approvers" if key == "approvers" else "")
    return f"{key} {str(problem['msg']).removeprefix('Value error, ')}"
