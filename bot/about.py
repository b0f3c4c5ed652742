"""The bot's version, as installed: for ``--version``, ``/healthz`` and the start line.
Standard library only, so that ``exalate-bot --help`` stays quick."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def bot_version() -> str:
    try:
        return version("exalate-bot")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"
