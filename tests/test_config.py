"""Settings: every missing or malformed value stops start-up naming the variable."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.config import Settings, SettingsError, load_settings, misspelt_variables
from bot.exalate import BearerToken

KEY = Fernet.generate_key().decode()
VALID = {
    "SLACK_BOT_TOKEN": "xoxb-1-abc",
    "JIRA_URL": "https://jira.example.test/",
    "JIRA_TOKEN": "jira-pat",
    "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
    "EXALATE_APPROVERS": "U0ADMIN, S0ADMINS",
}


@pytest.fixture(name="environment")
def _environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in VALID.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


class TestSettings:
    def test_valid_environment(self, environment: pytest.MonkeyPatch) -> None:
        """Values are parsed: approvers split, URLs normalised, defaults filled in."""
        settings = load_settings()
        assert settings.exalate_approvers == ("U0ADMIN", "S0ADMINS")
        assert settings.jira_url == "https://jira.example.test"
        assert settings.slack_api_url == "https://slack.com/api/"
        assert settings.database_url.startswith("sqlite+aiosqlite:///")
        assert settings.exalate_create_timeout == 15.0
        assert settings.exalate_poll_interval == 60.0
        assert settings.exalate_approval_ttl == timedelta(days=7)
        assert settings.exalate_invite_remind_after == timedelta(days=3)

    def test_project_patterns(self, environment: pytest.MonkeyPatch) -> None:
        """EXALATE_PROJECTS: keys and *-patterns, case-insensitive; empty allows all."""
        assert load_settings().sites[0].project_allowed("ANYTHING")
        environment.setenv("EXALATE_PROJECTS", "sup, D*")
        site = load_settings().sites[0]
        assert [site.project_allowed(k) for k in ("SUP", "DEV", "OPS", "SUPPORT")] == [
            True,
            True,
            False,
            False,
        ]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("7d", timedelta(days=7)),
            ("36h", timedelta(hours=36)),
            ("90m", timedelta(minutes=90)),
            ("3600", timedelta(hours=1)),
            ("1.5d", timedelta(hours=36)),
        ],
    )
    def test_durations(
        self, environment: pytest.MonkeyPatch, text: str, expected: timedelta
    ) -> None:
        """Durations read as days, hours, minutes or plain seconds."""
        environment.setenv("EXALATE_APPROVAL_TTL", text)
        assert load_settings().exalate_approval_ttl == expected

    def test_dotenv_file_is_read(self, environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """A .env file in the working directory supplies settings."""
        environment.delenv("JIRA_TOKEN")
        environment.chdir(tmp_path)
        (tmp_path / ".env").write_text("JIRA_TOKEN=from-dotenv\n")
        assert load_settings().sites[0].credentials == BearerToken("from-dotenv")

    @pytest.mark.parametrize("name", sorted(VALID))
    def test_missing_value_is_named(self, environment: pytest.MonkeyPatch, name: str) -> None:
        """Leaving out any required variable names exactly that variable."""
        environment.delenv(name)
        with pytest.raises(SettingsError, match=f"{name} is missing"):
            load_settings()

    @pytest.mark.parametrize(
        ("name", "value", "fragment"),
        [
            ("SLACK_BOT_TOKEN", "xapp-1", "xoxb-"),
            ("SLACK_APP_TOKEN", "xoxb-1", "xapp-"),
            ("JIRA_URL", "jira.internal", "http"),
            ("EXALATE_APPROVAL_CHANNEL", "#approvals", "a channel's name, not its id"),
            ("EXALATE_APPROVERS", "alice,U0OK", "alice"),
            ("EXALATE_APPROVERS", " , ", "names no approver"),
            ("EXALATE_CREATE_TIMEOUT", "-1", "greater than 0"),
            ("LOG_LEVEL", "LOUD", "DEBUG, INFO"),
            ("JIRA_URL", "https://admin:pw@jira.test", "must not carry a user"),
            ("DATABASE_URL", "not a url", "not a database URL"),
            ("DATABASE_URL", "postgresql://db/bot", "async driver"),
            ("EXALATE_APPROVAL_TTL", "a week", "duration such as 7d"),
            ("EXALATE_INVITE_REMIND_AFTER", "0d", "longer than zero"),
            ("EXALATE_POLL_INTERVAL", "0", "greater than 0"),
            ("EXALATE_PROJECTS", "SUP,no spaces", "not a project key or *-pattern"),
        ],
    )
    def test_malformed_value_is_named(
        self, environment: pytest.MonkeyPatch, name: str, value: str, fragment: str
    ) -> None:
        """A malformed value names the variable and says what is expected."""
        environment.setenv(name, value)
        with pytest.raises(SettingsError) as raised:
            load_settings()
        assert name in str(raised.value)
        assert fragment in str(raised.value)

    def test_errors_never_echo_secret_values(self, environment: pytest.MonkeyPatch) -> None:
        """A malformed token is reported without repeating it."""
        environment.setenv("SLACK_BOT_TOKEN", "xoxp-very-secret-user-token")
        with pytest.raises(SettingsError) as raised:
            load_settings()
        assert "very-secret" not in str(raised.value)

    def test_database_password_is_among_the_secrets(self, environment: pytest.MonkeyPatch) -> None:
        """The log filter learns every secret, the database password included."""
        environment.setenv("DATABASE_URL", "postgresql+asyncpg://bot:db-pass-1@db/bot")
        environment.setenv("SLACK_APP_TOKEN", "xapp-1-app")
        environment.setenv("EXALATE_SECRET_KEY", KEY)
        secrets = load_settings().secrets()
        assert {"db-pass-1", "xapp-1-app", "jira-pat", "xoxb-1-abc", KEY} <= set(secrets)

    def test_the_key_is_checked_with_the_settings_before_anything_is_created(
        self, environment: pytest.MonkeyPatch
    ) -> None:
        """PostgreSQL without EXALATE_SECRET_KEY, or a key that is none, is a settings
        error like any other: one message, before a database or a key file exists."""
        environment.setenv("DATABASE_URL", "postgresql+asyncpg://bot:db-pass-1@db/bot")
        with pytest.raises(SettingsError, match="EXALATE_SECRET_KEY is missing"):
            load_settings()
        environment.setenv("EXALATE_SECRET_KEY", "not-a-key")
        with pytest.raises(SettingsError, match="EXALATE_SECRET_KEY is not a Fernet key") as raised:
            load_settings()
        assert "not-a-key" not in str(raised.value)
        assert list(Path().iterdir()) == []

    def test_pydantic_s_words_are_the_settings_own(self, environment: pytest.MonkeyPatch) -> None:
        environment.setenv("EXALATE_INITIATION", "apu")
        environment.setenv("EXALATE_AUTO_MIGRATE", "maybe")
        environment.setenv("JIRA_TIMEOUT", "0")
        environment.setenv("JIRA_RETRIES", "x")
        with pytest.raises(SettingsError) as raised:
            load_settings()
        message = str(raised.value)
        assert "EXALATE_INITIATION must be api or assisted (it is 'apu')" in message
        assert "EXALATE_AUTO_MIGRATE must be true or false, 1 or 0, yes or no" in message
        assert "JIRA_TIMEOUT must be greater than 0 (it is '0')" in message
        assert "JIRA_RETRIES must be a whole number (it is 'x')" in message
        assert "Input should" not in message

    def test_a_misspelt_variable_is_named_with_the_setting_it_resembles(self) -> None:
        found = misspelt_variables(
            {"EXALATE_APROVERS": "U0A", "JIRA_TOKEN_EU": "x", "EXALATE_TEST_POSTGRES": "1"}
        )
        assert found == [("EXALATE_APROVERS", "EXALATE_APPROVERS")]

    @pytest.mark.parametrize(
        ("token", "said"), [("", "JIRA_TOKEN is empty"), ("abc", "3 characters")]
    )
    def test_an_empty_or_short_jira_token_is_one_clear_line(
        self, environment: pytest.MonkeyPatch, token: str, said: str
    ) -> None:
        environment.setenv("JIRA_TOKEN", token)
        with pytest.raises(SettingsError) as raised:
            load_settings()
        lines = str(raised.value).splitlines()[1:]
        assert len(lines) == 1
        assert said in lines[0]

    def test_http_mode_needs_a_signing_secret(self, environment: pytest.MonkeyPatch) -> None:
        """An empty signing secret is refused at start-up, not at the first request."""
        environment.setenv("SLACK_SIGNING_SECRET", "")
        with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET"):
            load_settings().require_http_mode()

    def test_socket_mode_needs_an_app_token(self, environment: pytest.MonkeyPatch) -> None:
        """Socket Mode without SLACK_APP_TOKEN says so by name."""
        with pytest.raises(SettingsError, match="SLACK_APP_TOKEN"):
            load_settings().require_socket_mode()

    @pytest.mark.parametrize(
        ("value", "wrong"),
        [
            ("C1", "'C1', too short for a channel id"),
            ("#approvals", "'#approvals', a channel's name, not its id"),
            ("approvals", "'approvals', not a channel id"),
        ],
    )
    def test_channel_error_says_what_is_wrong_and_where_ids_are(
        self, environment: pytest.MonkeyPatch, value: str, wrong: str
    ) -> None:
        """The operator learns what is wrong with their value, what an id looks like and
        where Slack shows it."""
        environment.setenv("EXALATE_APPROVAL_CHANNEL", value)
        with pytest.raises(SettingsError) as raised:
            load_settings()
        message = str(raised.value)
        assert f"EXALATE_APPROVAL_CHANNEL is {wrong}" in message
        assert "such as C0123456789" in message
        assert "channel details" in message

    def test_approvers_error_names_the_bad_ids_with_examples(
        self, environment: pytest.MonkeyPatch
    ) -> None:
        """Each value that is no id is named, with examples and where Slack shows ids."""
        environment.setenv("EXALATE_APPROVERS", "U0OK,alice,@bob")
        with pytest.raises(SettingsError) as raised:
            load_settings()
        message = str(raised.value)
        assert "'alice', '@bob'" in message
        assert "U0OK" not in message
        for hint in ("U0123456789", "S0123456789", "Copy member ID", "usergroups.list"):
            assert hint in message

    def test_socket_mode_requires_the_app_token_with_the_rest(
        self, environment: pytest.MonkeyPatch
    ) -> None:
        """In Socket Mode a missing SLACK_APP_TOKEN is named in the same message as every
        other problem, not in a second round after they are fixed."""
        environment.delenv("JIRA_TOKEN")
        with pytest.raises(SettingsError) as raised:
            load_settings("socket")
        message = str(raised.value)
        assert "JIRA_TOKEN is missing" in message
        assert "SLACK_APP_TOKEN is missing: Socket Mode needs" in message
        assert "SLACK_SIGNING_SECRET" not in message
        environment.setenv("JIRA_TOKEN", "jira-pat")
        environment.setenv("SLACK_APP_TOKEN", "xapp-1")
        assert load_settings("socket").slack_app_token is not None

    @pytest.mark.parametrize(("value", "problem"), [(None, "is missing"), ("", "is empty")])
    def test_http_mode_requires_a_signing_secret_with_the_rest(
        self, environment: pytest.MonkeyPatch, value: str | None, problem: str
    ) -> None:
        """In HTTP mode a missing or empty SLACK_SIGNING_SECRET is named with the rest;
        the app token is not asked for."""
        environment.setenv("EXALATE_APPROVAL_CHANNEL", "#approvals")
        if value is not None:
            environment.setenv("SLACK_SIGNING_SECRET", value)
        with pytest.raises(SettingsError) as raised:
            load_settings("http")
        message = str(raised.value)
        assert f"SLACK_SIGNING_SECRET {problem}: HTTP mode verifies" in message
        assert "EXALATE_APPROVAL_CHANNEL" in message
        assert "SLACK_APP_TOKEN" not in message
        environment.setenv("EXALATE_APPROVAL_CHANNEL", "C0APPROVE")
        environment.setenv("SLACK_SIGNING_SECRET", "s")
        assert load_settings("http").slack_signing_secret is not None


def test_every_setting_is_in_the_example_and_the_readme() -> None:
    """``.env.example`` and README's table name every variable the bot reads, and
    nothing it does not."""
    root = Path(__file__).resolve().parents[1]
    names = {name.upper() for name in Settings.model_fields}
    example = (root / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert listed == names
    readme = (root / "README.md").read_text()
    assert names <= set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))
