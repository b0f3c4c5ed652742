"""The request form as a person opens it: from ``/exalate connect key=value …`` or from
Request again, with the chosen site's short name and projects filled in."""

from __future__ import annotations

from collections.abc import Mapping

from bot.service import ConnectionService
from handlers import blocks


def request_form(service: ConnectionService, values: Mapping[str, str]) -> blocks.Json:
    """The form pre-filled with ``values`` (``site``, ``local``, ``remote``, ``name``,
    ``description``, ``project``). A short name given for a site that takes no requests
    now (Request again after it was retired) is that site's, so it is not offered."""
    site = service.sites.chosen(values.get("site", ""))
    own = site.config.local_short_name if site is not None else ""
    given = values.get("local") if site is not None or "site" not in values else None
    return blocks.request_modal(
        sites=[(s.name, s.config.local_short_name) for s in service.sites.open()],
        site=site.name if site is not None else "",
        local=given or own,
        remote=values.get("remote", ""),
        name=values.get("name", ""),
        description=values.get("description", ""),
        project=values.get("project", ""),
        projects=site.projects.peek() if site is not None else None,
    )
