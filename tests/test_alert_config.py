"""``[alerts]`` in ``exalate-bot.toml`` (and a site's ``console_url``): read with their
defaults, off without the table, and refused with every problem named."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.alert_config import Alerts
from bot.config import SettingsError, load_settings

SITES = """
[sites.eu]
jira_url = "https://jira-eu.example.test"
token_env = "JIRA_TOKEN_EU"
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-abc")
    monkeypatch.setenv("EXALATE_APPROVAL_CHANNEL", "C0APPROVE")
    monkeypatch.setenv("EXALATE_APPROVERS", "U0ADMIN")
    monkeypatch.setenv("JIRA_TOKEN_EU", "eu-personal-token")


def _problems(text: str) -> list[str]:
    Path("exalate-bot.toml").write_text(SITES + text)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    return str(raised.value).splitlines()[1:]


def test_without_the_table_alerts_are_off() -> None:
    Path("exalate-bot.toml").write_text(SITES)
    settings = load_settings()
    assert settings.alerts == Alerts()
    assert not settings.alerts.enabled
    assert settings.sites[0].console == "https://jira-eu.example.test"


def test_the_table_turns_them_on_with_its_defaults() -> None:
    Path("exalate-bot.toml").write_text(SITES + '\n[alerts]\nchannel = "C0EXALATEOPS"\n')
    assert load_settings().alerts == Alerts(enabled=True, channel="C0EXALATEOPS")
    Path("exalate-bot.toml").write_text(SITES + "\n[alerts]\n")
    assert load_settings().alerts == Alerts(enabled=True)  # the approval channel, then


def test_every_key_is_read() -> None:
    Path("exalate-bot.toml").write_text(
        SITES.replace(
            'token_env = "JIRA_TOKEN_EU"',
            'token_env = "JIRA_TOKEN_EU"\nconsole_url = "https://jira-eu.example.test/exalate/"',
        )
        + '\n[alerts]\nchannel = "C0OPS"\nqueue_threshold = 500\n'
        'queue_window = "30m"\nremind_after = "4h"\n'
    )
    settings = load_settings()
    assert settings.alerts == Alerts(True, "C0OPS", 500, timedelta(minutes=30), timedelta(hours=4))
    assert settings.sites[0].console == "https://jira-eu.example.test/exalate"


def test_every_problem_is_named_with_its_place() -> None:
    problems = _problems(
        '\n[alerts]\nchannel = "#ops"\nqueue_threshold = 0\nqueue_window = "soon"\n'
        "remind_after = 60\nmute = true\n"
    )
    assert (
        problems[0]
        .strip()
        .startswith("exalate-bot.toml: [alerts] channel is '#ops', a channel's name, not its id")
    )
    assert [line.strip() for line in problems[1:]] == [
        "exalate-bot.toml: [alerts] queue_threshold must be at least 1",
        "exalate-bot.toml: [alerts] queue_window must be a duration such as 7d, 36h, 90m or"
        " 3600 (seconds)",
        "exalate-bot.toml: [alerts] remind_after must be a duration such as 10m, 1h or 1d",
        "exalate-bot.toml: [alerts] mute is not a key this version knows",
    ]


def test_a_console_url_must_be_a_web_address() -> None:
    text = SITES.replace(
        'token_env = "JIRA_TOKEN_EU"', 'token_env = "JIRA_TOKEN_EU"\nconsole_url = "console"'
    )
    Path("exalate-bot.toml").write_text(text)
    with pytest.raises(SettingsError, match=r"\[sites.eu\] console_url must be an http"):
        load_settings()
