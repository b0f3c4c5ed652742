"""``exalate-bot.toml``: the sites a bot serves, or the one the flat variables describe.

Every problem in the file is named with its place, all in one message, before anything
is created; secrets stay in the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import SettingsError, load_settings
from bot.exalate import BasicAuth, BearerToken
from bot.site_config import loosely_writable

COMMON = {
    "SLACK_BOT_TOKEN": "xoxb-1-abc",
    "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
    "EXALATE_APPROVERS": "U0ADMIN",
}
TWO_SITES = """
[sites.eu]
jira_url = "https://jira-eu.example.test/"
token_env = "JIRA_TOKEN_EU"
local_short_name = "acme-eu"
projects = ["SUP", "OPS-*"]

[sites.us]
jira_url = "https://jira-us.example.test"
username = "exalate-bot"
password_env = "JIRA_PASSWORD_US"
local_short_name = "acme-us"
initiation = "assisted"
retired = true
"""


@pytest.fixture(name="environment")
def _environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in COMMON.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("JIRA_TOKEN_EU", "eu-personal-token")
    monkeypatch.setenv("JIRA_PASSWORD_US", "us-password")
    return monkeypatch


def _problems(**overrides: str) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(**overrides)
    return str(raised.value)


def test_the_file_in_the_working_directory_describes_the_sites(environment: object) -> None:
    """``./exalate-bot.toml`` is read when present: each site with its own URL, way to
    sign in, short name, projects, initiation mode and retirement."""
    Path("exalate-bot.toml").write_text(TWO_SITES)
    eu, us = load_settings().sites
    assert (eu.name, eu.jira_url, eu.local_short_name) == (
        "eu",
        "https://jira-eu.example.test",
        "acme-eu",
    )
    assert eu.credentials == BearerToken("eu-personal-token")
    assert [eu.project_allowed(k) for k in ("SUP", "OPS-1", "DEV")] == [True, True, False]
    assert (eu.initiation, eu.retired) == ("api", False)
    assert (us.initiation, us.retired) == ("assisted", True)
    assert us.credentials == BasicAuth("exalate-bot", "us-password")
    assert us.project_allowed("ANY")


def test_exalate_config_names_the_file(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(TWO_SITES)
    environment.setenv("EXALATE_CONFIG", str(path))
    assert [site.name for site in load_settings().sites] == ["eu", "us"]


def test_secrets_from_the_environment_are_redacted_and_never_shown(environment: object) -> None:
    Path("exalate-bot.toml").write_text(TWO_SITES)
    settings = load_settings()
    assert {"eu-personal-token", "us-password"} <= set(settings.secrets())
    assert "eu-personal-token" not in repr(settings.sites)
    assert "us-password" not in repr(settings.sites)


def test_a_secret_may_come_from_the_dotenv_file(environment: pytest.MonkeyPatch) -> None:
    environment.delenv("JIRA_TOKEN_EU")
    Path(".env").write_text("JIRA_TOKEN_EU=from-dotenv\n")
    Path("exalate-bot.toml").write_text(TWO_SITES)
    assert load_settings().sites[0].credentials == BearerToken("from-dotenv")


def test_without_a_file_the_flat_variables_are_the_default_site(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("JIRA_URL", "https://jira.example.test/")
    environment.setenv("JIRA_TOKEN", "flat-token")
    environment.setenv("EXALATE_LOCAL_SHORT_NAME", "acme")
    environment.setenv("EXALATE_INITIATION", "assisted")
    environment.setenv("EXALATE_PROJECTS", "SUP")
    (site,) = load_settings().sites
    assert (site.name, site.jira_url, site.local_short_name) == (
        "default",
        "https://jira.example.test",
        "acme",
    )
    assert (site.initiation, site.projects, site.retired) == ("assisted", ("SUP",), False)
    assert site.credentials == BearerToken("flat-token")


def test_without_a_file_the_flat_variables_are_required(environment: object) -> None:
    message = _problems()
    assert "JIRA_URL is missing" in message
    assert "JIRA_TOKEN is missing (or describe the sites in exalate-bot.toml)" in message


def test_a_blank_flat_token_is_refused(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("JIRA_URL", "https://jira.example.test/")
    environment.setenv("JIRA_TOKEN", "  ")
    assert "JIRA_TOKEN is empty" in _problems()


def test_a_file_and_flat_site_variables_together_are_refused(
    environment: pytest.MonkeyPatch,
) -> None:
    Path("exalate-bot.toml").write_text(TWO_SITES)
    environment.setenv("JIRA_URL", "https://jira.example.test/")
    environment.setenv("EXALATE_PROJECTS", "SUP")
    message = _problems()
    assert "JIRA_URL, EXALATE_PROJECTS and exalate-bot.toml are both given" in message
    assert message.count("\n") == 1  # one message, one line


def test_every_problem_of_the_file_is_named_with_its_place(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.delenv("JIRA_TOKEN_EU")
    environment.setenv("JIRA_PASSWORD_US", "")
    Path("exalate-bot.toml").write_text(
        """
[sites.eu]
jira_url = "https://jira-eu.example.test"
token_env = "JIRA_TOKEN_EU"
local_short_name = "acme"

[sites.us]
jira_url = "https://jira-us.example.test"
username = "bot"
password_env = "JIRA_PASSWORD_US"

[sites.apac]
jira_url = "jira-apac"
token = "pasted-secret"
local_short_name = "ACME"

[sites.staging]
jira_url = "https://jira-staging.example.test"

[sites.Both]
jira_url = "https://jira-x.example.test"
token_env = "JIRA_TOKEN_EU"
username = "bot"
password_env = "JIRA_PASSWORD_US"

[approvals]
"""
    )
    message = _problems()
    assert "[sites.eu] names JIRA_TOKEN_EU, which is not set in the environment" in message
    assert "[sites.us] names JIRA_PASSWORD_US, which is empty in the environment" in message
    assert "[sites.apac] jira_url must be an http:// or https:// URL" in message
    assert "[sites.apac] token is not a key this version knows" in message
    assert "[sites.staging] has no credentials" in message
    assert "approvals is not a key this version knows" in message
    assert "pasted-secret" not in message


def test_names_credentials_and_short_names_are_checked(environment: pytest.MonkeyPatch) -> None:
    Path("exalate-bot.toml").write_text(
        """
[sites.eu]
jira_url = "https://jira-eu.example.test"
token_env = "JIRA_TOKEN_EU"
local_short_name = "acme"

[sites.us]
jira_url = "https://jira-us.example.test"
token_env = "JIRA_TOKEN_EU"
local_short_name = "ACME"

[sites.Both]
jira_url = "https://jira-x.example.test"
token_env = "JIRA_TOKEN_EU"
username = "bot"
password_env = "JIRA_PASSWORD_US"

[sites.half]
jira_url = "https://jira-y.example.test"
username = "bot"
"""
    )
    message = _problems()
    assert "[sites.us] local_short_name is also [sites.eu]'s" in message
    assert "[sites.Both] the name must be lower case" in message
    assert "[sites.Both] gives token_env and username/password_env: choose one" in message
    assert "[sites.half] basic auth needs both username (without ':') and password_env" in message


def test_a_file_that_is_no_toml_or_describes_no_site(environment: pytest.MonkeyPatch) -> None:
    Path("exalate-bot.toml").write_text("[sites.eu\n")
    assert "exalate-bot.toml is not valid TOML" in _problems()
    Path("exalate-bot.toml").write_text("[sites]\n")
    assert "exalate-bot.toml describes no site" in _problems()
    environment.setenv("EXALATE_CONFIG", "/nonexistent/sites.toml")
    assert "EXALATE_CONFIG names /nonexistent/sites.toml, which does not exist" in _problems()


def test_settings_errors_and_file_errors_come_in_one_message(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.delenv("SLACK_BOT_TOKEN")
    environment.delenv("JIRA_TOKEN_EU")
    Path("exalate-bot.toml").write_text(TWO_SITES)
    message = _problems()
    assert "SLACK_BOT_TOKEN is missing" in message
    assert "[sites.eu] names JIRA_TOKEN_EU, which is not set" in message


def test_a_file_others_may_write_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "exalate-bot.toml"
    path.write_text(TWO_SITES)
    os.chmod(path, 0o600)
    assert not loosely_writable(path)
    os.chmod(path, 0o620)
    assert loosely_writable(path)


def test_a_secret_files_line_break_is_dropped_and_a_broken_token_refused(
    environment: pytest.MonkeyPatch,
) -> None:
    """A token read from a secret file ends in a line break: no part of it. A token with
    a space or a control character inside is refused at start, naming the variable and
    never the value."""
    environment.setenv("JIRA_TOKEN_EU", "eu-personal-token\n")
    Path("exalate-bot.toml").write_text(TWO_SITES)
    assert load_settings().sites[0].credentials == BearerToken("eu-personal-token")
    environment.setenv("JIRA_TOKEN_EU", "eu-personal token")
    message = _problems()
    assert "[sites.eu] JIRA_TOKEN_EU: the Jira token must not contain spaces" in message
    assert "personal token" not in message


def test_two_sites_on_one_jira_are_refused(environment: object) -> None:
    Path("exalate-bot.toml").write_text(
        TWO_SITES.replace("https://jira-us.example.test", "https://JIRA-EU.example.test")
    )
    assert "[sites.us] jira_url is also [sites.eu]'s" in _problems()


def test_a_flat_token_is_checked_as_a_sites_is(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("JIRA_URL", "https://jira.example.test/")
    environment.setenv("JIRA_TOKEN", "flat-token\n")
    assert load_settings().sites[0].credentials == BearerToken("flat-token")
    environment.setenv("JIRA_TOKEN", "flat\x07token")
    assert "JIRA_TOKEN: the Jira token must not contain spaces or control" in _problems()
    environment.setenv("JIRA_TOKEN", "flat-token")
    environment.setenv("EXALATE_LOCAL_SHORT_NAME", "acme eu")
    assert "EXALATE_LOCAL_SHORT_NAME must start with a letter" in _problems()


def test_an_override_of_none_is_no_value(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("JIRA_URL", "https://jira.example.test/")
    environment.setenv("JIRA_TOKEN", "flat-token")
    assert load_settings(exalate_config=None).sites[0].name == "default"
