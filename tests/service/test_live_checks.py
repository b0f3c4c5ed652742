"""What Jira is asked about project keys its cached list lacks, and how often one person
may have it asked: a made-up key costs a call with the bot's admin credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.approvals.limits import Submitter
from bot.approvals.model import RequestFields
from bot.approvals.rules import Draft, Field
from bot.service import Sites
from bot.service.checks import LiveChecks
from tests.fakes.exalate import FakeExalate, fake_site
from tests.fakes.repository import InMemoryRequestStore
from tests.service.world import ALICE, BOB, make_world

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _checks() -> tuple[LiveChecks, FakeExalate]:
    exalate = FakeExalate()
    return LiveChecks(InMemoryRequestStore(), Sites([fake_site(exalate=exalate)])), exalate


def _fields(project: str) -> RequestFields:
    return RequestFields("acme", "partner", "acme_to_partner", "", project, "default")


def _lookups(exalate: FakeExalate) -> list[str]:
    return [call for call in exalate.calls if call.startswith("project ")]


class TestKeysTheListLacks:
    async def test_jira_is_asked_once_about_a_key_it_lacks(self) -> None:
        """Fifty submissions naming NOPE: one call, fifty refusals."""
        checks, exalate = _checks()
        for _ in range(50):
            errors = await checks.errors(_fields("NOPE"))
            assert errors == {Field.PROJECT: "Jira has no project with the key NOPE."}
        assert _lookups(exalate) == ["project NOPE"]

    async def test_its_answer_is_believed_as_long_as_the_list_is(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past the list's lifetime the key is asked about again: the project may have
        been created since."""
        monkeypatch.setattr("bot.service.checks.UNLISTED_TTL", 0.0)
        checks, exalate = _checks()
        await checks.errors(_fields("NOPE"))
        await checks.errors(_fields("NOPE"))
        assert _lookups(exalate) == ["project NOPE", "project NOPE"]

    async def test_a_site_remembers_a_bounded_number_of_keys(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The oldest key is forgotten first, so memory stays bounded."""
        monkeypatch.setattr("bot.service.checks.UNLISTED_MAX", 3)
        checks, exalate = _checks()
        for key in ("A", "B", "C", "D", "A"):
            await checks.errors(_fields(key))
        assert _lookups(exalate) == [f"project {key}" for key in "ABCDA"]

    async def test_calls_about_unlisted_keys_are_bounded_for_everyone(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Distinct made-up keys, as many as anyone sends: Jira is asked about the first
        few, then the form says to come back in a minute."""
        monkeypatch.setattr("bot.service.checks.UNLISTED_LOOKUPS", 3)
        monkeypatch.setattr("bot.service.checks.UNLISTED_WINDOW", 3600.0)
        checks, exalate = _checks()
        answers = [await checks.errors(_fields(f"MADEUP{n}")) for n in range(10)]
        assert len(_lookups(exalate)) == 3
        assert "submit again in a minute" in answers[-1][Field.PROJECT]

    async def test_a_new_project_is_found(self) -> None:
        """A project created after the list was read is still accepted."""
        checks, exalate = _checks()
        await checks.errors(_fields("SUP"))  # the list, read
        exalate.projects.append(exalate.projects[0].model_copy(update={"key": "NEW"}))
        assert await checks.errors(_fields("NEW")) == {}

    @pytest.mark.parametrize("key", ["..", "../serverInfo", "sup", "A-B", "", "K" * 256])
    async def test_what_is_no_key_is_never_asked_about(self, key: str) -> None:
        """The rules refuse these first; here too, nothing that could change the call's
        path ever reaches Jira."""
        checks, exalate = _checks()
        assert Field.PROJECT in await checks.errors(_fields(key))
        assert _lookups(exalate) == []


class TestRefusalsCount:
    async def test_refused_submissions_count_toward_the_hourly_limit(self) -> None:
        """Per hour, a person may have Jira refuse as many submissions as they may
        submit; the next is refused before Jira is asked, saying when to come back."""
        checks, exalate = _checks()
        for n in range(3):
            at = T0 + timedelta(minutes=n)
            assert await checks.errors(_fields(f"NOPE{n}"), Submitter(ALICE, at, 3))
        refused = await checks.errors(
            _fields("MORE"), Submitter(ALICE, T0 + timedelta(minutes=5), 3)
        )
        assert refused == {
            Field.NAME: "Jira refused 3 of your submissions in the last hour, the most one "
            "person may; you can submit again at 10:00 UTC. Your answers are kept."
        }
        assert "project MORE" not in exalate.calls
        assert await checks.errors(_fields("SUP"), Submitter(BOB, T0, 3)) == {}
        assert (
            await checks.errors(_fields("SUP"), Submitter(ALICE, T0 + timedelta(hours=1), 3)) == {}
        )

    async def test_accepted_submissions_are_counted_by_the_database_not_here(self) -> None:
        """Submissions Jira has nothing against are stored, and the store counts them."""
        checks, _ = _checks()
        for n in range(10):
            assert (
                await checks.errors(_fields("SUP"), Submitter(ALICE, T0 + timedelta(seconds=n), 3))
                == {}
            )


async def test_forms_jira_refuses_count_toward_the_hourly_limit() -> None:
    """Ten made-up keys in an hour, each a Jira lookup that stores nothing: the
    eleventh form is refused before Jira is asked, saying when to come back."""
    world = make_world()
    for number in range(10):
        draft = Draft("acme", "partner", f"acme_{number}", "", f"NOPE{number}")
        refused = await world.requests.submit(draft, ALICE, check_within=5)
        assert refused.request is None
    asked = len(world.exalate().calls)
    eleventh = await world.requests.submit(
        Draft("acme", "partner", "acme_10", "", "NOPE10"), ALICE, check_within=5
    )
    assert eleventh.request is None
    assert "submit again at" in " ".join(eleventh.errors.values())
    assert len(world.exalate().calls) == asked  # Jira was not asked
    other = await world.requests.submit(
        Draft("acme", "partner", "", "", "SUP"), BOB, check_within=5
    )
    assert other.request is not None  # someone else is not held back
