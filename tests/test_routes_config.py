"""``[[routes]]`` in ``exalate-bot.toml``: read, matched in file order, explained by
``exalate-bot routes check``, and refused with every problem named before anything is
created."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.approvals.routes import Route, Routes, Rule
from bot.cli.main import main
from bot.cli.parser import REFUSED
from bot.config import SettingsError, load_settings

ENVIRONMENT = {
    "SLACK_BOT_TOKEN": "xoxb-1-abc",
    "EXALATE_APPROVAL_CHANNEL": "C0APPROVE",
    "EXALATE_APPROVERS": "U0ADMIN",
    "JIRA_TOKEN_EU": "eu-personal-token",
    "JIRA_TOKEN_US": "us-personal-token",
}
SITES = """
[sites.eu]
jira_url = "https://jira-eu.example.test"
token_env = "JIRA_TOKEN_EU"

[sites.us]
jira_url = "https://jira-us.example.test"
token_env = "JIRA_TOKEN_US"
"""
ROUTES = """
[[routes]]
sites = ["eu"]
projects = ["SUP", "HELP-*"]
approvers = ["S0SUPPORTLEADS", "U0123456789"]
approvals = 2
channel = "C0SUPPORTOPS"
escalate_after = "4h"
escalate_to = ["S0EXALATEADMINS"]

[[routes]]
projects = ["fin"]
approvers = ["U0CFO", "U0CONTROLLER"]
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


def _write(text: str) -> None:
    Path("exalate-bot.toml").write_text(SITES + text)


def _problems() -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings()
    return str(raised.value)


def test_routes_are_read_in_file_order_with_their_rules() -> None:
    _write(ROUTES)
    support, finance = load_settings().routes.routes
    assert support == Route(
        Rule(
            ("S0SUPPORTLEADS", "U0123456789"),
            approvals=2,
            channel="C0SUPPORTOPS",
            escalate_after=timedelta(hours=4),
            escalate_to=("S0EXALATEADMINS",),
            route=1,
        ),
        sites=("eu",),
        projects=("SUP", "HELP-*"),
    )
    assert finance.projects == ("FIN",)  # keys are upper case, as Jira's
    assert finance.rule == Rule(("U0CFO", "U0CONTROLLER"), route=2)


def test_the_first_matching_route_decides_else_the_default() -> None:
    _write(ROUTES)
    routes = load_settings().routes
    assert routes.rule_for("eu", "SUP").route == 1
    assert routes.rule_for("eu", "help-desk").route == 1  # a pattern; case does not count
    assert routes.rule_for("us", "SUP") == Rule(("U0ADMIN",))  # the first is eu's only
    assert routes.rule_for("us", "FIN").route == 2
    assert routes.rule_for("eu", "OPS") == routes.default


def test_without_routes_every_request_goes_to_the_default_approvers() -> None:
    _write("")
    routes = load_settings().routes
    assert routes.routes == ()
    assert routes.rule_for("eu", "SUP") == Rule(("U0ADMIN",))


def test_every_problem_of_the_routes_is_named_with_its_place_and_nothing_starts() -> None:
    _write(
        """
[[routes]]
projects = ["SUP"]
approvers = ["U0ALICE", "U0BOB"]
approvals = 3
colour = "red"

[[routes]]
projects = ["OPS"]
approvals = 0
approvers = ["@bob"]

[[routes]]
sites = ["apac"]
approvers = ["U0BOB"]
escalate_after = "soon"
escalate_to = ["S0ADMINS"]

[[routes]]
approvers = ["U0BOB"]
escalate_after = "1h"

[[routes]]
approvers = []
channel = "#support"
"""
    )
    message = _problems()
    assert "[[routes]] #1 colour is not a key this version knows" in message
    assert "[[routes]] #2 approvers has '@bob'" in message
    assert "[[routes]] #3 escalate_after must be a duration" in message
    assert "[[routes]] #4 escalate_after and escalate_to go together" in message
    assert "[[routes]] #5 approvers names no approver" in message
    assert "[[routes]] #5 channel is '#support', a channel's name, not its id" in message
    _write('[[routes]]\nprojects = ["OPS"]\napprovers = ["U0BOB"]\napprovals = 0\n')
    assert "[[routes]] #1 approvals must be at least 1" in _problems()
    _write('[[routes]]\napprovers = ["U0ALICE", "U0BOB"]\napprovals = 3\n')
    assert "approvals is 3, but approvers lists only 2 people" in _problems()
    _write('[[routes]]\nsites = ["apac"]\napprovers = ["U0BOB"]\n')
    assert "sites names apac, which the file does not describe" in _problems()
    _write('[[routes]]\napprovers = ["U0BOB"]\n')
    load_settings()  # one route without sites or projects is every request's: allowed
    _write("[routes]\napprovers = 1\n")
    assert "routes must be written as [[routes]] tables" in _problems()


def test_a_group_may_be_asked_for_more_approvals_than_it_lists_ids() -> None:
    """A group holds any number of people: the count is checked against people when
    every approver is a person only."""
    _write('[[routes]]\napprovers = ["S0LEADS"]\napprovals = 3\n')
    assert load_settings().routes.routes[0].rule.approvals == 3


def test_a_route_hidden_behind_an_earlier_one_is_found() -> None:
    everything = Route(Rule(("U0A",), route=1), projects=("SUP*",))
    hidden = Route(Rule(("U0B",), route=2), sites=("eu",), projects=("SUPPORT",))
    reachable = Route(Rule(("U0C",), route=3), projects=("OPS",))
    routes = Routes((everything, hidden, reachable), Rule(("U0D",)))
    assert routes.shadowed() == [(everything, hidden)]


def test_a_rule_survives_its_round_trip_through_storage() -> None:
    rule = Rule(("S0L", "U0A"), 2, "C0X", timedelta(minutes=90), ("S0ADMINS",), route=4)
    assert Rule.from_json(rule.to_json()) == rule
    assert Rule.from_json(Rule(("U0A",)).to_json()) == Rule(("U0A",))


class TestRoutesCheck:
    def test_names_the_route_its_approvers_count_channel_and_escalation(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _write(ROUTES)
        assert main(["routes", "check", "--site", "eu", "--project", "sup"]) == 0
        out = capsys.readouterr().out
        assert "Route #1 (SUP, HELP-* on site eu) decides SUP on site eu." in out
        assert "Approvers: S0SUPPORTLEADS, U0123456789" in out
        assert "Approvals needed: 2, each from a different approver" in out
        assert "Card goes to: C0SUPPORTOPS" in out
        assert "after 4h undecided, S0EXALATEADMINS may decide too" in out

    def test_says_when_the_default_approvers_decide(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _write(ROUTES)
        assert main(["routes", "check", "--site", "us", "--project", "OPS"]) == 0
        out = capsys.readouterr().out
        assert "No route matches OPS on site us: the default approvers decide" in out
        assert "Approvers: U0ADMIN" in out
        assert "Card goes to: C0APPROVE" in out
        assert "Escalation: none" in out

    def test_an_unknown_or_missing_site_is_refused(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _write(ROUTES)
        assert main(["routes", "check", "--site", "apac", "--project", "SUP"]) == REFUSED
        assert "no site named apac; the sites are: eu, us" in capsys.readouterr().err
        assert main(["routes", "check", "--project", "SUP"]) == REFUSED
        assert "say which: --site eu" in capsys.readouterr().err
