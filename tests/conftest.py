"""Shared fixtures: a clean environment, so no test reads the developer's settings."""

from __future__ import annotations

import os

import pytest

# Settings names the bot reads, plus proxies: slack_sdk ignores NO_PROXY, so a proxy
# variable would send loopback calls to the proxy.
_CLEARED = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
_PREFIXES = ("SLACK_", "JIRA_", "EXALATE_", "DATABASE_URL", "LOG_LEVEL")


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name in _CLEARED or name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    # A .env in the working directory would be read by Settings; run from an empty one.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
