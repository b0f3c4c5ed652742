"""The request form as a person opens it: from ``/exalate connect key=value …`` or from
Request again, with the chosen site's short name and projects filled in."""

from __future__ import annotations

from collections.abc import Mapping

from bot.service import ConnectionService, Site
from handlers import blocks


def chosen_site(service: ConnectionService, name: str) -> Site | None:
    """The site the form is for: ``name`` if it takes requests, else the only open site,
    else None (the person chooses in the form)."""
    open_sites = service.sites.open()
    if name:
        return next((site for site in open_sites if site.name == name), None)
    return open_sites[0] if len(open_sites) == 1 else None


def request_form(service: ConnectionService, values: Mapping[str, str]) -> blocks.Json:
    """The form pre-filled with ``values`` (``site``, ``local``, ``remote``, ``name``,
    ``description``, ``project``)."""
    site = chosen_site(service, values.get("site", ""))
    own = site.config.local_short_name if site is not None else ""
    return blocks.request_modal(
        sites=[(s.name, s.config.local_short_name) for s in service.sites.open()],
        site=site.name if site is not None else "",
        local=values.get("local") or own,
        remote=values.get("remote", ""),
        name=values.get("name", ""),
        description=values.get("description", ""),
        project=values.get("project", ""),
        projects=site.projects.peek() if site is not None else None,
    )
