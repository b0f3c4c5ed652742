"""The Exalate nodes ("sites") the bot serves: read from ``exalate-bot.toml``, or, without
a file, from the flat variables of a single site named ``default``.

The file names the environment variables that hold each site's secret; the secret
itself never sits in the file. Every problem found is reported, each on its own line,
so an operator fixes the whole file in one go.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import stat
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bot.alert_config import Alerts, read_alerts
from bot.approvals.model import DEFAULT_SITE
from bot.approvals.routes import Route
from bot.approvals.rules import SHORT_NAME_MAX
from bot.exalate.auth import BasicAuth, BearerToken, Credentials
from bot.route_config import read_routes
from bot.setting_checks import check_project_patterns, check_token_length

DEFAULT_CONFIG_FILE = "exalate-bot.toml"
SITE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SHORT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Initiation = Literal["api", "assisted"]


class SitesInvalid(Exception):
    """The sites cannot be built; ``lines`` says each problem, naming where it is."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost`` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: it is somewhere on the network
        return False


def check_http_url(value: str) -> str:
    """A Jira base URL without a trailing slash; ValueError says what is wrong."""
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ValueError("must be an http:// or https:// URL")
    if "@" in value.split("/")[2]:
        raise ValueError("must not carry a user or password; the credentials authenticate")
    return value.rstrip("/")


def check_short_name(value: str) -> str:
    """A local instance short name as Exalate's wizard takes it, or empty (none to offer)."""
    if value and not (len(value) <= SHORT_NAME_MAX and _SHORT_NAME.fullmatch(value)):
        raise ValueError(
            "must start with a letter and hold only letters, digits, '_' or '-' "
            f"(at most {SHORT_NAME_MAX})"
        )
    return value


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """One Exalate node as configured: where it is, how the bot signs in (a personal
    access token, or Jira basic auth), what it allows."""

    name: str
    jira_url: str
    credentials: Credentials
    credentials_from: str = "JIRA_TOKEN"
    """Where the secret comes from, for messages: the variable's name, never its value."""
    local_short_name: str = ""
    projects: tuple[str, ...] = ()
    """Jira project keys or ``*``-patterns allowed for incoming sync; empty: all."""
    initiation: Initiation = "api"
    retired: bool = False
    """Read-only: its invitations are still followed, no new request is taken."""
    console_url: str | None = None
    """Where an admin opens the node's Exalate console (an incident's Open in Exalate);
    None: ``jira_url``, from where Exalate is one menu away (Apps, Exalate)."""

    @property
    def console(self) -> str:
        return self.console_url or self.jira_url

    def project_allowed(self, key: str) -> bool:
        """Whether ``key`` may be chosen for incoming sync on this site."""
        return not self.projects or any(
            fnmatch.fnmatchcase(key.upper(), pattern) for pattern in self.projects
        )

    @property
    def credentials_in_clear(self) -> bool:
        """Whether the credentials cross the network unencrypted: plain ``http://`` to
        another host. Loopback (the simulator, a local proxy) is exempt."""
        url = urllib.parse.urlsplit(self.jira_url)
        return url.scheme == "http" and not is_loopback(url.hostname or "")

    @property
    def uses_token(self) -> bool:
        return isinstance(self.credentials, BearerToken)

    def secrets(self) -> list[str]:
        """What the log filter must redact: the token; or, for basic auth, the password
        and the header's ``base64(username:password)``, which anyone can decode."""
        return list(self.credentials.secrets())


class _SiteEntry(BaseModel):
    """One ``[sites.<name>]`` table as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jira_url: str
    token_env: str | None = None
    username: str | None = None
    password_env: str | None = None
    local_short_name: str = ""
    projects: tuple[str, ...] = ()
    initiation: Initiation = "api"
    retired: bool = False
    console_url: str | None = None

    @field_validator("jira_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("console_url")
    @classmethod
    def _console_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @field_validator("projects", mode="before")
    @classmethod
    def _projects(cls, value: object) -> tuple[str, ...]:
        return check_project_patterns(value)

    @field_validator("local_short_name")
    @classmethod
    def _short_name(cls, value: str) -> str:
        return check_short_name(value)

    @field_validator("token_env", "password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError("must be the name of an environment variable, such as JIRA_TOKEN_EU")
        return value


def config_path(given: str | None, cwd: Path | None = None) -> Path | None:
    """The file in use: ``EXALATE_CONFIG`` if given, else ``./exalate-bot.toml`` when
    present, else None (the flat variables describe one site)."""
    if given:
        return Path(given)
    default = (cwd or Path.cwd()) / DEFAULT_CONFIG_FILE
    return default if default.is_file() else None


def loosely_writable(path: Path) -> bool:
    """Whether others than its owner may change the file (and so which Jira gets the
    bot's credentials)."""
    try:
        return bool(path.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH))
    except OSError:
        return False


def environment() -> dict[str, str]:
    """The variables a ``token_env`` may name: the process's, over a ``.env`` file's."""
    from_file = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    return from_file | dict(os.environ)


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """What ``exalate-bot.toml`` describes: the sites, the routes of approvals, and
    where incidents go."""

    sites: tuple[SiteConfig, ...]
    routes: tuple[Route, ...] = ()
    alerts: Alerts = field(default_factory=Alerts)


def read_config(path: Path, env: Mapping[str, str]) -> ConfigFile:
    """Every site the file describes, with its secret from ``env``, and its routes;
    SitesInvalid lists every problem at once."""
    where = path.name
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SitesInvalid([f"EXALATE_CONFIG names {path}, which does not exist"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SitesInvalid([f"{where} cannot be read: {type(error).__name__}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise SitesInvalid([f"{where} is not valid TOML: {error}"]) from None
    problems = [
        f"{where}: {key} is not a key this version knows"
        for key in document
        if key not in ("sites", "routes", "alerts")
    ]
    tables = document.get("sites", {})
    if not isinstance(tables, dict) or not tables:
        problems.append(f"{where} describes no site: add a [sites.<name>] table")
        tables = {}
    sites = []
    for name, table in tables.items():
        place = f"{where}: [sites.{name}]"
        if not SITE_NAME.fullmatch(name):
            problems.append(
                f"{place} the name must be lower case: a letter, then letters, digits, "
                "'_' or '-' (at most 32)"
            )
        try:
            entry = _SiteEntry.model_validate(table)
        except ValidationError as error:
            problems.extend(f"{place} {_says(p)}" for p in error.errors())
            continue
        site, wrong = _resolve(name, entry, env)
        problems.extend(f"{place} {line}" for line in wrong)
        if site is not None:
            sites.append(site)
    problems.extend(_duplicates(where, sites))
    routes, wrong = read_routes(document.get("routes", []), where, tuple(tables))
    problems.extend(wrong)
    alerts, wrong = read_alerts(document.get("alerts"), where)
    problems.extend(wrong)
    if problems:
        raise SitesInvalid(problems)
    return ConfigFile(tuple(sites), tuple(routes), alerts)


def _resolve(
    name: str, entry: _SiteEntry, env: Mapping[str, str]
) -> tuple[SiteConfig | None, list[str]]:
    """The site with its secret read from the environment, or what is wrong."""
    basic = entry.username is not None or entry.password_env is not None
    if entry.token_env is not None and basic:
        return None, ["gives token_env and username/password_env: choose one way to sign in"]
    if not basic and entry.token_env is None:
        return None, [
            "has no credentials: give token_env (a personal access token), or username "
            "and password_env (basic auth)"
        ]
    if basic and (not entry.username or ":" in entry.username or entry.password_env is None):
        return None, ["basic auth needs both username (without ':') and password_env"]
    variable = entry.token_env or entry.password_env
    assert variable is not None
    secret = env.get(variable, "")
    if not secret.strip():
        state = "is empty" if variable in env else "is not set"
        return None, [f"names {variable}, which {state} in the environment"]
    try:
        if not basic:
            check_token_length(secret.strip())
        credentials: Credentials = (
            BasicAuth(entry.username or "", secret.rstrip("\r\n"))
            if basic
            else BearerToken(secret.strip())  # a secret file's final line break
        )
    except ValueError as error:  # says what is wrong, never the value
        return None, [f"{variable}: {error}"]
    site = SiteConfig(
        name=name,
        jira_url=entry.jira_url,
        credentials=credentials,
        credentials_from=variable,
        local_short_name=entry.local_short_name,
        projects=entry.projects,
        initiation=entry.initiation,
        retired=entry.retired,
        console_url=entry.console_url,
    )
    return site, []


def _duplicates(where: str, sites: list[SiteConfig]) -> list[str]:
    """Two sites that are one node: the same short name, or the same Jira. Each would
    see the other's connections as made outside the bot, and names would clash."""
    problems = []
    for what in ("local_short_name", "jira_url"):
        seen: dict[str, str] = {}
        for site in sites:
            value = str(getattr(site, what)).casefold()
            if value and value in seen:
                problems.append(
                    f"{where}: [sites.{site.name}] {what} is also [sites.{seen[value]}]'s: "
                    "each site is a node of its own"
                )
            seen.setdefault(value, site.name)
    return problems


def flat_site(
    jira_url: str,
    token: BearerToken,
    *,
    local_short_name: str,
    projects: tuple[str, ...],
    initiation: Initiation,
) -> SiteConfig:
    """The one site the flat variables (``JIRA_URL``, ``JIRA_TOKEN``, …) describe."""
    return SiteConfig(
        name=DEFAULT_SITE,
        jira_url=jira_url,
        credentials=token,
        local_short_name=local_short_name,
        projects=projects,
        initiation=initiation,
    )


def _says(problem: Mapping[str, Any]) -> str:
    """One of pydantic's problems with a site's table, as ``key what``."""
    key = ".".join(str(part) for part in problem["loc"])
    kind = problem["type"]
    if kind == "extra_forbidden":
        return f"{key} is not a key this version knows"
    if kind == "missing":
        return f"{key} is missing"
    return f"{key} {str(problem['msg']).removeprefix('Value error, ')}"
