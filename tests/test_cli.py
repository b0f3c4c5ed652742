"""The console script's start-up checks, run in-process."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.cli.main import main
from bot.cli.parser import DATABASE_UNAVAILABLE
from bot.config import load_settings
from bot.runtime.app import Runtime
from bot.runtime.serve import SIMULATED_JIRA, simulated_jira
from handlers.payloads import PREFILL_KEYS
from storage import make_engine, upgrade_schema
from storage.schema import BASELINE, head_revision

# Each mode with the one setting only it needs left out.
MODES_WITHOUT_THEIR_CREDENTIAL = [
    (["run"], "SLACK_APP_TOKEN"),
    (["run", "--http", "--simulated-jira", "--port", "0"], "SLACK_SIGNING_SECRET"),
]


class TestMain:
    def test_missing_settings_exit_2_naming_them(self, capsys: pytest.CaptureFixture[str]) -> None:
        """With nothing configured, start-up stops before connecting and lists the gaps."""
        assert main(["run"]) == 2
        error = capsys.readouterr().err
        for name in (
            "SLACK_BOT_TOKEN",
            "SLACK_APP_TOKEN",
            "JIRA_URL",
            "JIRA_TOKEN",
            "EXALATE_APPROVAL_CHANNEL",
            "EXALATE_APPROVERS",
        ):
            assert f"{name} is missing" in error

    @pytest.mark.parametrize(("arguments", "absent"), MODES_WITHOUT_THEIR_CREDENTIAL)
    def test_the_modes_setting_is_named_with_the_rest(
        self,
        arguments: list[str],
        absent: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """One message names every problem, the chosen mode's credential included."""
        _configure(monkeypatch, but=absent, EXALATE_APPROVERS="U0ADMIN,alice")
        assert main(arguments) == 2
        error = capsys.readouterr().err
        assert error.startswith("exalate-bot: Invalid settings:")
        assert f"{absent} is missing" in error
        assert "'alice'" in error

    @pytest.mark.parametrize(("arguments", "absent"), MODES_WITHOUT_THEIR_CREDENTIAL)
    def test_a_failed_start_leaves_nothing_behind(
        self,
        arguments: list[str],
        absent: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Settings are checked before anything exists: no database, no key file in the
        working directory, and no simulator started."""
        _configure(monkeypatch, but=absent)
        assert main(arguments) == 2
        error = capsys.readouterr().err
        assert f"{absent} is missing" in error
        assert "simulator" not in error
        assert list(Path.cwd().iterdir()) == []


def _configure(monkeypatch: pytest.MonkeyPatch, *, but: str, **changed: str) -> None:
    """Every setting of either mode, except ``but``, with ``changed`` values."""
    values = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APP_TOKEN": "xapp-1",
        "SLACK_SIGNING_SECRET": "s",
        "JIRA_URL": "http://127.0.0.1:9",
        "JIRA_TOKEN": "cli-test-token",
        "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
        "EXALATE_APPROVERS": "U0ADMIN",
    }
    for name, value in (values | changed).items():
        if name != but:
            monkeypatch.setenv(name, value)


class TestHelp:
    def _help(self, arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
        with pytest.raises(SystemExit):
            main([*arguments, "--help"])
        return " ".join(capsys.readouterr().out.split())  # argparse wraps lines

    def test_says_what_no_command_does(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`exalate-bot` alone runs the bot: --help says so."""
        assert "With no command it runs the bot in Socket Mode" in self._help([], capsys)

    def test_run_shows_its_defaults(self, capsys: pytest.CaptureFixture[str]) -> None:
        """HTTP mode listens on every interface unless told: --help shows it."""
        text = self._help(["run"], capsys)
        assert "(default: 0.0.0.0, every interface)" in text
        assert "(default: 3000)" in text


class TestSimulatedJira:
    async def test_runtime_talks_to_the_built_in_simulator(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--simulated-jira needs no JIRA_URL or JIRA_TOKEN and reads Jira from the simulator."""
        for name, value in {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
            "EXALATE_APPROVERS": "U0ADMIN",
            "DATABASE_URL": "sqlite+aiosqlite://",
            "EXALATE_SECRET_KEY": Fernet.generate_key().decode(),
        }.items():
            monkeypatch.setenv(name, value)
        settings = load_settings(**SIMULATED_JIRA)
        async with simulated_jira(settings) as simulated:
            assert simulated.sites[0].jira_url.startswith("http://127.0.0.1:")
            runtime = await Runtime.start(simulated, http_mode=True)
            try:
                projects = await runtime.services.sites["default"].projects.get(wait=5)
            finally:
                await runtime.close()
        assert "SUP" in {project.key for project in projects}


class TestDoctorCommand:
    def test_invalid_settings_fail_the_first_check(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With nothing configured, doctor prints ✗ for the settings and exits 1."""
        assert main(["doctor"]) == 1
        assert capsys.readouterr().out.startswith("✗ Settings:")


UNREACHABLE = "postgresql+asyncpg://bot:pw-Secret-9@127.0.0.1:9/bot"
BOT_SETTINGS = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_APP_TOKEN": "xapp-1",
    "JIRA_URL": "http://127.0.0.1:9",
    "JIRA_TOKEN": "cli-test-token",
    "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
    "EXALATE_APPROVERS": "U0ADMIN",
    "EXALATE_SECRET_KEY": Fernet.generate_key().decode(),
}


class TestDatabaseCommands:
    async def test_migrate_upgrades_once_then_says_there_is_nothing_to_do(
        self,
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", database_url)
        assert await asyncio.to_thread(main, ["migrate"]) == 0
        assert f"upgraded from empty to {head_revision()}" in capsys.readouterr().out
        assert await asyncio.to_thread(main, ["migrate"]) == 0
        assert "already at the newest revision" in capsys.readouterr().out

    @pytest.mark.parametrize("backend", ["postgresql"])
    async def test_run_refuses_an_old_postgresql_schema_with_the_command(
        self,
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Replicas upgrade PostgreSQL only when told: without --migrate, the bot stops
        before it touches the database, and says what to run."""
        engine = make_engine(database_url)
        await upgrade_schema(engine, BASELINE)
        await engine.dispose()
        for name, value in BOT_SETTINGS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DATABASE_URL", database_url)
        assert await asyncio.to_thread(main, ["run"]) == 2
        *logged, error = capsys.readouterr().err.splitlines()
        assert error.startswith("exalate-bot: The database is at revision 0001")
        assert "run `exalate-bot migrate`" in error
        assert "--migrate" in error
        assert [json.loads(line)["event"] for line in logged] == ["bot_starting"]

    @pytest.mark.parametrize("command", [["run"], ["migrate"], ["audit", "export"]])
    def test_an_unreachable_database_is_one_line_without_the_password(
        self,
        command: list[str],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        for name, value in BOT_SETTINGS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
        assert main(command) == DATABASE_UNAVAILABLE  # a supervisor restarts it, unlike 2
        captured = capsys.readouterr()
        *logged, said = captured.err.splitlines()
        assert said == (
            "exalate-bot: Cannot use the database postgresql+asyncpg://bot:***@127.0.0.1:9/bot: "
            "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 9)"
        )
        assert all(json.loads(line)["event"] == "bot_starting" for line in logged)  # run's log
        assert "pw-Secret-9" not in captured.out + captured.err


ROOT = Path(__file__).parents[1]


class TestShippedFiles:
    def test_usage_hint_names_every_sub_command_and_option(self) -> None:
        """Slack shows the hint as one types /exalate: all of it, within Slack's limit."""
        found = re.search(r'usage_hint: "(.*)"', (ROOT / "manifest.yml").read_text())
        assert found is not None
        hint = found[1]
        assert len(hint) <= 1000
        for part in ("status [mine | NAME]", "cancel NAME", "help"):
            assert part in hint
        assert set(re.findall(r"(\w+)=", hint)) == PREFILL_KEYS
        assert f'usage_hint: "{hint}"' in (ROOT / "README.md").read_text()  # HTTP snippet

    def test_docker_build_context_leaves_out_local_and_secret_files(self) -> None:
        lines = set((ROOT / ".dockerignore").read_text().splitlines())
        for pattern in (".git", ".venv", ".ci-venv", ".env", "**/*.db", "**/*.db.key"):
            assert pattern in lines

    def test_image_pins_its_dependencies_and_probes_its_health_port(self) -> None:
        dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
        assert "pip install --no-cache-dir --constraint constraints.txt ." in dockerfile
        assert "127.0.0.1:8081/healthz" in dockerfile
        assert 'CMD ["run", "--health-port", "8081"]' in dockerfile
        pins = (ROOT / "deploy" / "constraints.txt").read_text()
        assert re.search(r"^slack_bolt==", pins, re.MULTILINE)

    def test_systemd_does_not_restart_a_bot_that_refused_to_start(self) -> None:
        """Settings errors exit 2 (see main): restarting would only repeat them."""
        unit = (ROOT / "deploy" / "exalate-bot.service").read_text()
        assert "RestartPreventExitStatus=2" in unit.splitlines()
        # The README's timer probes this port.
        assert "--host 127.0.0.1 --health-port 8081" in unit

    def test_the_image_pins_what_the_tests_run_with(self) -> None:
        """deploy/constraints.txt pins every runtime dependency, CI installs with it, and
        each pin is the version installed here: what passes the tests is what ships."""
        from importlib.metadata import version

        from packaging.specifiers import SpecifierSet

        pins = _pins(ROOT / "deploy" / "constraints.txt")
        closure = _runtime_closure()
        assert set(pins) == set(closure), "regenerate deploy/constraints.txt (README: Deploy)"
        for name, wanted in closure.items():
            assert SpecifierSet(wanted).contains(pins[name]), f"{name}{wanted}"
        installed = {name: version(name) for name in pins}
        assert installed == pins, "install with -c deploy/constraints.txt (README: Deploy)"
        ci = (ROOT / ".ci" / "run").read_text()
        assert re.search(r"^python -m pip install .*-c deploy/constraints\.txt", ci, re.M)

    def test_the_image_and_its_build_backend_are_exact_versions(self) -> None:
        import tomllib

        dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
        assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim-[a-z]+$", dockerfile, re.M)
        build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
        assert all(re.fullmatch(r"[\w-]+==[\d.]+", pin) for pin in build["requires"])


def _pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a constraints file, by canonical name."""
    from packaging.utils import canonicalize_name

    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    pairs = [line.split("==") for line in lines if line]
    assert all(len(pair) == 2 for pair in pairs), "only name==version lines"
    return {canonicalize_name(name): version for name, version in pairs}


def _runtime_closure() -> dict[str, str]:
    """Every distribution pyproject's [project] dependencies need here, extras and
    environment markers evaluated: canonical name -> the versions all its requirers
    allow, as one specifier."""
    import tomllib
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    allowed: dict[str, set[str]] = {}
    extras: dict[str, set[str]] = {}
    todo = [Requirement(line) for line in declared]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        allowed.setdefault(name, set()).add(str(requirement.specifier))
        if name in extras and requirement.extras <= extras[name]:
            continue  # its own requirements are known already
        wanted = extras.setdefault(name, set())
        wanted |= requirement.extras
        for line in requires(name) or []:
            needed = Requirement(line)
            markers = [{"extra": extra} for extra in wanted or {""}]
            if needed.marker is None or any(needed.marker.evaluate(m) for m in markers):
                todo.append(needed)
    return {
        name: ",".join(sorted(filter(None, specifiers))) for name, specifiers in allowed.items()
    }
