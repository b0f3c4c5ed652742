"""Building the sites from their settings: one client, one pair of caches and one health
record per Exalate node, all sharing the process's HTTP session and metrics."""

from __future__ import annotations

import aiohttp

from bot.config import Settings, SettingsError
from bot.exalate import ExalateClient
from bot.metrics import Metrics
from bot.service import Site, Sites
from bot.site_config import SiteConfig
from storage import RequestRepository

# Jira's lists change rarely; a minute keeps the form current without hammering Jira.
LIST_CACHE_SECONDS = 60.0


def make_client(
    config: SiteConfig, settings: Settings, http: aiohttp.ClientSession, metrics: Metrics
) -> ExalateClient:
    return ExalateClient(
        http,
        config.jira_url,
        config.credentials,
        read_timeout=settings.jira_timeout,
        create_timeout=settings.exalate_create_timeout,
        read_retries=settings.jira_retries,
        observe=metrics.observer(config.name),
        credentials_from=config.credentials_from,
    )


def build_sites(settings: Settings, http: aiohttp.ClientSession, metrics: Metrics) -> Sites:
    """Every configured site, ready to serve; nothing is asked of any Jira yet."""
    return Sites(
        [
            Site.of(
                config, make_client(config, settings, http, metrics), list_ttl=LIST_CACHE_SECONDS
            )
            for config in settings.sites
        ]
    )


async def refuse_orphans(repository: RequestRepository, sites: Sites) -> None:
    """Refuse to start when a site that still has open requests or pending invitations
    is gone from the settings: nobody would follow them. ``retired = true`` keeps such
    a site read-only instead."""
    orphans = await repository.open_in_sites_other_than(sites.names)
    if orphans:
        lines = [
            f"site {site!r} is not configured but has open requests: {', '.join(names)}"
            for site, names in sorted(orphans.items())
        ]
        raise SettingsError(
            "Invalid settings:\n  "
            + "\n  ".join(lines)
            + "\n  Keep each such site in exalate-bot.toml with retired = true: its "
            "invitations are still followed and it takes no new requests."
        )
