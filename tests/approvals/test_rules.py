"""The offline rules on a request's fields."""

from __future__ import annotations

import pytest

from bot.approvals.rules import Draft, Field, check_draft

VALID = Draft("acme", "partner", "", "Sync support tickets", "SUP")


class TestCheckDraft:
    def test_valid_draft_suggests_the_connection_name(self) -> None:
        """An empty connection name becomes {local}_to_{remote}."""
        fields, errors = check_draft(VALID)
        assert errors == {}
        assert fields is not None
        assert fields.connection_name == "acme_to_partner"

    def test_values_are_trimmed(self) -> None:
        """Surrounding spaces, as pasted from elsewhere, are not part of a name."""
        fields, _ = check_draft(Draft(" acme ", "partner\n", " a_b ", "  x  ", " SUP "))
        assert fields is not None
        assert (fields.local_short_name, fields.connection_name, fields.description) == (
            "acme",
            "a_b",
            "x",
        )

    @pytest.mark.parametrize(
        ("draft", "field", "fragment"),
        [
            (Draft("", "partner", "", "", "SUP"), Field.LOCAL, "Enter the local"),
            (Draft("1acme", "partner", "", "", "SUP"), Field.LOCAL, "start with a letter"),
            (Draft("acme", "par tner", "", "", "SUP"), Field.REMOTE, "no spaces"),
            (Draft("acme", "p" * 51, "", "", "SUP"), Field.REMOTE, "at most 50"),
            (Draft("acme", "partner", "x" * 256, "", "SUP"), Field.NAME, "at most 255"),
            (Draft("acme", "partner", "a<b>", "", "SUP"), Field.NAME, "start with a letter"),
            (Draft("acme", "partner", "", "d" * 1001, "SUP"), Field.DESCRIPTION, "at most 1000"),
            (Draft("acme", "partner", "", "a\x00b", "SUP"), Field.DESCRIPTION, "NUL"),
            (Draft("acme", "partner", "", "", ""), Field.PROJECT, "Choose the Jira project"),
        ],
    )
    def test_each_rule_names_its_field(self, draft: Draft, field: Field, fragment: str) -> None:
        """A broken rule yields a message on the field that broke it, and no fields."""
        fields, errors = check_draft(draft)
        assert fields is None
        assert fragment in errors[field]

    def test_all_problems_are_reported_at_once(self) -> None:
        """Several bad fields give several messages, not one per submit."""
        _, errors = check_draft(Draft("1", "2", "", "", ""))
        assert set(errors) == {Field.LOCAL, Field.REMOTE, Field.PROJECT}

    def test_limits_are_inclusive(self) -> None:
        """Exactly 50, 255 and 1000 characters are accepted."""
        fields, errors = check_draft(Draft("a" * 50, "b" * 50, "c" * 255, "d" * 1000, "SUP"))
        assert errors == {}
        assert fields is not None

    def test_unicode_description_is_kept(self) -> None:
        """Emoji and right-to-left marks are fine in a description."""
        fields, errors = check_draft(Draft("acme", "partner", "", "sync 🚀 \u200f עברית", "SUP"))
        assert errors == {}
        assert fields is not None
        assert "🚀" in fields.description
