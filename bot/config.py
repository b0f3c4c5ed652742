"""Settings, read once from the environment (and a ``.env`` file) at start-up.

Nothing else in the code reads ``os.environ``: the process entry point loads
``Settings`` and passes it down. A missing or malformed value stops start-up with a
message that names the variable, before anything connects anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from cryptography.fernet import Fernet
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.alert_config import Alerts
from bot.approvals.routes import Route, Routes, Rule
from bot.database_url import check_database_url, database_passwords
from bot.exalate.auth import BearerToken
from bot.setting_checks import (
    check_approvers,
    check_channel,
    check_project_patterns,
    check_token_length,
    parse_duration,
)
from bot.site_config import (
    DEFAULT_CONFIG_FILE,
    ConfigFile,
    SiteConfig,
    SitesInvalid,
    check_http_url,
    check_short_name,
    config_path,
    environment,
    flat_site,
    read_config,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///exalate-bot.db"
# Prefixes of the settings' names; another name with one of them may be a misspelling.
_PREFIXES = ("SLACK_", "JIRA_", "EXALATE_", "DATABASE_", "LOG_")
# What a person who left out a mode's credential needs to know to get it.
_MISSING_HINTS = {
    "slack_app_token": "Socket Mode needs an app-level token (xapp-…) with "
    "connections:write, from Basic Information → App-Level Tokens; or run with --http",
    "slack_signing_secret": "HTTP mode verifies every request with it, from Basic "
    "Information → App Credentials → Signing Secret",
}


S = TypeVar("S", bound="DatabaseSettings")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names every variable at fault."""


class DatabaseSettings(BaseSettings):
    """Just the database: all that ``exalate-bot audit export`` needs."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    exalate_auto_migrate: bool = False
    """Upgrade a PostgreSQL schema at start (SQLite is always upgraded)."""

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return check_database_url(value)


class Settings(DatabaseSettings):
    """Every knob of the bot. Field names are the environment variable names."""

    slack_bot_token: SecretStr
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    exalate_config: str | None = None
    """``exalate-bot.toml``: the sites; default ``./exalate-bot.toml`` when present."""
    jira_url: str | None = None
    """The single site's Jira, when no file describes the sites."""
    jira_token: SecretStr | None = None
    jira_timeout: float = Field(default=10.0, gt=0)
    jira_retries: int = Field(default=2, ge=0, le=10)
    exalate_approval_channel: str
    exalate_approvers: Annotated[tuple[str, ...], NoDecode]
    exalate_max_open_per_requester: int = Field(default=3, ge=1)
    """Requests one person may have awaiting approval (or in assisted mode) at once."""
    exalate_max_submissions_per_hour: int = Field(default=10, ge=1)
    """Requests one person may submit in any hour."""
    exalate_projects: Annotated[tuple[str, ...], NoDecode] = ()
    """Jira project keys or ``*``-patterns allowed for incoming sync; empty: all."""
    exalate_local_short_name: str = ""
    exalate_secret_key: SecretStr | None = None
    exalate_create_timeout: float = Field(default=15.0, gt=0)
    exalate_initiation: Literal["api", "assisted"] = "api"
    exalate_poll_interval: float = Field(default=60.0, gt=0)
    exalate_approval_ttl: timedelta = timedelta(days=7)
    exalate_invite_remind_after: timedelta = timedelta(days=3)
    log_level: str = "INFO"

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    _sites: tuple[SiteConfig, ...] = PrivateAttr(default=())
    _routes: tuple[Route, ...] = PrivateAttr(default=())
    _alerts: Alerts = PrivateAttr(default=Alerts())

    @property
    def alerts(self) -> Alerts:
        """Where sync-health incidents go (the file's ``[alerts]``); off without it."""
        return self._alerts

    @property
    def routes(self) -> Routes:
        """Who decides which request: the file's routes, then ``EXALATE_APPROVERS`` in
        ``EXALATE_APPROVAL_CHANNEL`` for requests no route matches."""
        return Routes(self._routes, default=Rule(self.exalate_approvers))

    @property
    def sites(self) -> tuple[SiteConfig, ...]:
        """The Exalate nodes the bot serves, in the order the file gives them."""
        return self._sites

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("must be an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("jira_url")
    @classmethod
    def _jira_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @field_validator("exalate_approval_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        return check_channel(value)

    @field_validator("exalate_approvers", mode="before")
    @classmethod
    def _approvers(cls, value: object) -> tuple[str, ...]:
        return check_approvers(value)

    @field_validator("exalate_local_short_name")
    @classmethod
    def _short_name(cls, value: str) -> str:
        return check_short_name(value)

    @field_validator("exalate_projects", mode="before")
    @classmethod
    def _projects(cls, value: object) -> tuple[str, ...]:
        return check_project_patterns(value)

    @field_validator("exalate_approval_ttl", "exalate_invite_remind_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    def secrets(self) -> list[str]:
        """Every secret value, for the log filter to redact."""
        values = [
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
            self.jira_token,
            self.exalate_secret_key,
        ]
        found = [value.get_secret_value() for value in values if value is not None]
        found += [secret for site in self.sites for secret in site.secrets()]
        return found + database_passwords(self.database_url)

    def require_socket_mode(self) -> SecretStr:
        """The app-level token Socket Mode needs, or a SettingsError naming it."""
        if self.slack_app_token is None:
            raise SettingsError(
                "SLACK_APP_TOKEN is missing: Socket Mode needs an app-level token (xapp-) "
                "with connections:write. Or run with --http."
            )
        return self.slack_app_token

    def require_http_mode(self) -> SecretStr:
        """The signing secret HTTP mode needs; an empty one would 500 on every request."""
        if self.slack_signing_secret is None or not self.slack_signing_secret.get_secret_value():
            raise SettingsError(
                "SLACK_SIGNING_SECRET is missing: HTTP mode verifies every request with it "
                "(Basic Information → App Credentials → Signing Secret)."
            )
        return self.slack_signing_secret


class SocketModeSettings(Settings):
    """Settings of a bot in Socket Mode, which cannot connect without the app token."""

    slack_app_token: SecretStr


class HttpModeSettings(Settings):
    """Settings of a bot in HTTP mode, which must verify Slack's signature on every
    request: an empty secret would fail each one, so it is refused at start."""

    slack_signing_secret: SecretStr

    @field_validator("slack_signing_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError(f"is empty: {_MISSING_HINTS['slack_signing_secret']}")
        return value


class _SiteVariables(BaseSettings):
    """The variables that say where the sites come from, as given (unvalidated): whether
    a file is in use, and which flat site variables are set beside it."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    exalate_config: str | None = None
    jira_url: str | None = None
    jira_token: str | None = None
    exalate_local_short_name: str | None = None
    exalate_projects: Annotated[str | None, NoDecode] = None
    exalate_initiation: str | None = None


# Flat variables that describe the single site; beside a file they would be ignored.
_FLAT_SITE_VARIABLES = (
    "jira_url",
    "exalate_local_short_name",
    "exalate_projects",
    "exalate_initiation",
)


def load_settings(mode: Literal["socket", "http"] | None = None, /, **overrides: Any) -> Settings:
    """Read the bot's settings and its sites; a problem becomes SettingsError naming each
    variable, or each place in ``exalate-bot.toml``.

    ``mode`` also requires what that way of reaching Slack needs, so that a start is
    refused with every problem in one message, before anything is created or started.
    """
    kinds: dict[str | None, type[Settings]] = {
        None: Settings,
        "socket": SocketModeSettings,
        "http": HttpModeSettings,
    }
    lines: list[str] = []
    settings: Settings | None = None
    try:
        settings = kinds[mode](**overrides)
    except ValidationError as error:
        lines = _lines(error)
    try:
        described = _described(settings, overrides)
    except SitesInvalid as error:
        lines += error.lines
    if settings is not None:
        lines += _key_problems(settings)
    if lines:
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines))
    assert settings is not None
    settings._sites = described.sites
    settings._routes = described.routes
    settings._alerts = described.alerts
    return settings


def _key_problems(settings: Settings) -> list[str]:
    """What is wrong with the key that seals invitation codes, found before anything is
    created: none given where no key file can be kept, or one that is no key."""
    from storage.db import sqlite_file  # storage's own errors are settings errors

    key = settings.exalate_secret_key
    if key is None:
        if sqlite_file(settings.database_url) is not None:
            return []  # a key file beside the database
        return [
            "EXALATE_SECRET_KEY is missing: it is required when DATABASE_URL is not an "
            "SQLite file (there is no place beside the database for a key file)"
        ]
    try:
        Fernet(key.get_secret_value().encode())
    except ValueError:
        return [
            "EXALATE_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes); "
            'create one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        ]
    return []


def _given(overrides: dict[str, Any]) -> _SiteVariables:
    raw: dict[str, Any] = {
        k: str(v)
        for k, v in overrides.items()
        if k in _SiteVariables.model_fields and v is not None
    }
    return _SiteVariables(**raw)


def sites_file_in_use(**overrides: Any) -> Path | None:
    """The sites file settings would be read with (``EXALATE_CONFIG``, or
    ``./exalate-bot.toml`` when present); None: the flat variables describe one site."""
    return config_path(_given(overrides).exalate_config)


def _described(settings: Settings | None, overrides: dict[str, Any]) -> ConfigFile:
    """The sites and routes from the file in use, or the one site the flat variables
    describe (and no routes)."""
    given = _given(overrides)
    path = config_path(given.exalate_config)
    if path is not None:
        beside = [name.upper() for name in _FLAT_SITE_VARIABLES if getattr(given, name)]
        if beside:
            raise SitesInvalid(
                [
                    f"{', '.join(beside)} and {path.name} are both given: the file describes "
                    "every site; move these values into it (see README, Sites) and unset them"
                ]
            )
        return read_config(path, environment())
    missing = [
        f"{name.upper()} is missing"
        for name in ("jira_url", "jira_token")
        if getattr(given, name) is None
    ]
    if given.jira_token is not None and not given.jira_token.strip():
        missing.append("JIRA_TOKEN is empty")
    if missing:
        raise SitesInvalid(
            [*missing[:-1], missing[-1] + f" (or describe the sites in {DEFAULT_CONFIG_FILE})"]
        )
    if settings is None or settings.jira_url is None or settings.jira_token is None:
        return ConfigFile(())  # malformed: pydantic has named it
    try:  # a secret file's final line break is no part of the token
        secret = settings.jira_token.get_secret_value().strip()
        check_token_length(secret)
        token = BearerToken(secret)
    except ValueError as error:  # says what is wrong, never the value
        raise SitesInvalid([f"JIRA_TOKEN: {error}"]) from None
    site = flat_site(
        settings.jira_url,
        token,
        local_short_name=settings.exalate_local_short_name,
        projects=settings.exalate_projects,
        initiation=settings.exalate_initiation,
    )
    return ConfigFile((site,))


def load_database_settings() -> DatabaseSettings:
    """Read only DATABASE_URL, for commands that need nothing else."""
    return _load(DatabaseSettings, {})


def _load(kind: type[S], overrides: dict[str, Any]) -> S:
    """Read settings of ``kind``, turning pydantic's report into one line per variable."""
    try:
        return kind(**overrides)
    except ValidationError as error:
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(_lines(error))) from None


def _lines(error: ValidationError) -> list[str]:
    """Pydantic's report as one line per variable, in the words of the rest."""
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]).upper() if problem["loc"] else "settings"
        if problem["type"] == "missing":
            hint = _MISSING_HINTS.get(name.lower())
            message = f"is missing: {hint}" if hint else "is missing"
        else:
            message = _worded(problem)
        lines.append(f"{name} {message}")
    return lines


def _worded(problem: Mapping[str, Any]) -> str:
    """One of pydantic's problems as the settings' other messages say them: what the
    value must be, and what it was (never a secret's: those are checked by hand)."""
    kind, context = problem["type"], problem.get("ctx") or {}
    given = f" (it is {problem['input']!r})" if isinstance(problem.get("input"), str) else ""
    if kind == "literal_error":
        choices = str(context.get("expected", "")).replace("'", "")
        return f"must be {choices}{given}"
    if kind == "bool_parsing":
        return f"must be true or false, 1 or 0, yes or no{given}"
    if kind in ("int_parsing", "int_from_float"):
        return f"must be a whole number{given}"
    if kind == "float_parsing":
        return f"must be a number{given}"
    bounds = {
        "greater_than": "greater than {gt:g}",
        "greater_than_equal": "at least {ge:g}",
        "less_than": "less than {lt:g}",
        "less_than_equal": "at most {le:g}",
    }
    if kind in bounds:
        return f"must be {bounds[kind].format(**context)}{given}"
    return str(problem["msg"]).removeprefix("Value error, ")


def misspelt_variables(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """Variables that look like a setting's name but are none (``EXALATE_APROVERS``),
    each with the name it resembles: read by nobody, so the setting they meant keeps its
    default, or is missing."""
    known = {name.upper() for name in Settings.model_fields}
    found = []
    for name in sorted(set(environ) - known):
        close = get_close_matches(name, known, n=1, cutoff=0.9)  # a typo, not another name
        if name.startswith(_PREFIXES) and close:
            found.append((name, close[0]))
    return found
