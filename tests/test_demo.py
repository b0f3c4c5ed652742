"""`exalate-bot demo` runs the whole flow here and shows what each person sees."""

from __future__ import annotations

import pytest

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
