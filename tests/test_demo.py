"""`exalate-bot demo` runs the whole flow here and shows what each person sees."""

from __future__ import annotations

import re
import sys

import pytest

from bot.cli.demo import terminal_text
from bot.cli.main import main


def test_demo_runs_the_whole_flow(capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 0; the form, the card, Bob's approval, Alice's code, acceptance and history."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for seen in (
        "Alice types: /exalate connect remote=partner project=SUP",
        "a form opens",
        "#approvals, a new card",
        "[Approve]",
        "Approved by @Bob",
        "Alice's DM with the bot",
        "Here is its invitation code",
        "the connection is active",
        "History of acme_to_partner",
    ):
        assert seen in out, seen
    code_lines = [line for line in out.splitlines() if line.strip().startswith("```")]
    assert len(code_lines) == 1  # the code is shown once: in Alice's DM
    before_code = out[: out.index(code_lines[0])]
    assert before_code.rindex("Alice's DM with the bot") > before_code.rindex("#approvals")
    # It reads as Slack shows it: mentions by name, emoji drawn, no asterisks, and no
    # escape codes where the output is not a terminal (here, a capture).
    assert "waiting for approval in #approvals" in out
    assert "🔑 The connection acme_to_partner was created" in out
    assert "Requested by: @Alice" in out
    for raw in ("<@", "<#", "&lt;", "&gt;", "&amp;", "\x1b["):
        assert raw not in out, raw
    assert not re.search(r"\*\w", out)
    assert not re.search(r":[a-z_]+:", out)


def test_demo_draws_bold_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal bold is bold, as in Slack."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["demo"]) == 0
    assert "Ask for a \x1b[1mprivate\x1b[0m connection" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mrkdwn", "shown"),
    [
        ("*Requested by*\n<@U0ALICE>", "Requested by\n@Alice"),
        ("in <#C0APPROVALS> and <#C9|other>", "in #approvals and #other"),
        ("<@U9> and <!subteam^S1|@admins>, <!here>", "@U9 and @admins, @here"),
        ("see <https://x.test|the docs>", "see the docs (https://x.test)"),
        (":key: :tada: :unknown:", "🔑 🎉 :unknown:"),
        ("&lt;@U0BOB&gt; &amp;lt; a*b*c", "<@U0BOB> &lt; a*b*c"),
        ("`*not bold* &lt;`, ```<@U0BOB>```", "`*not bold* <`, ```<@U0BOB>```"),
    ],
)
def test_terminal_text(mrkdwn: str, shown: str) -> None:
    """Mentions, channels, links, emoji and entities as Slack shows them; what a user
    typed (escaped) and code stay as written."""
    assert terminal_text(mrkdwn, styled=False) == shown


def test_terminal_text_bold_is_ansi_only_when_styled() -> None:
    assert terminal_text("a *b* c", styled=True) == "a \x1b[1mb\x1b[0m c"
    assert terminal_text("a *b* c", styled=False) == "a b c"
