"""The repository on real databases, SQLite and PostgreSQL, compare-and-set included."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.approvals.model import DEFAULT_SITE, ConnectionRequest, RequestFields, Status
from storage import (
    NameTaken,
    RequestRepository,
    SubmissionLimits,
    TooManyOpen,
    make_engine,
    make_sessionmaker,
    upgrade_schema,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
FIELDS = RequestFields("acme", "partner", "acme_to_partner", "Support sync", "SUP")


@pytest.fixture(name="repository")
async def _repository(database_url: str) -> AsyncIterator[RequestRepository]:
    engine = make_engine(database_url)
    await upgrade_schema(engine)
    yield RequestRepository(make_sessionmaker(engine))
    await engine.dispose()


class TestRepository:
    async def test_add_and_get_round_trip(self, repository: RequestRepository) -> None:
        """A stored request reads back field for field, with aware UTC times."""
        stored = await repository.add(FIELDS, "U1", T0)
        read = await repository.get(stored.id)
        assert read == stored
        assert read.status is Status.PENDING_APPROVAL
        assert read.created_at == T0

    async def test_transition_wins_then_a_stale_copy_loses(
        self, repository: RequestRepository
    ) -> None:
        """The second compare-and-set on the same snapshot hits no row and changes nothing."""
        stored = await repository.add(FIELDS, "U1", T0)
        won = await repository.transition(
            stored, Status.INITIATING, actor="U2", at=T0, decided_by="U2"
        )
        lost = await repository.transition(stored, Status.REJECTED, actor="U3", at=T0, reason="no")
        assert won is not None
        assert won.status is Status.INITIATING
        assert won.decided_by == "U2"
        assert lost is None
        assert (await repository.get(stored.id)) == won

    async def test_concurrent_transitions_have_one_winner(
        self, repository: RequestRepository
    ) -> None:
        """Twenty racing approvals on one snapshot: exactly one succeeds."""
        stored = await repository.add(FIELDS, "U1", T0)
        results = await asyncio.gather(
            *(
                repository.transition(stored, Status.INITIATING, actor=f"U{n}", at=T0)
                for n in range(20)
            )
        )
        assert sum(result is not None for result in results) == 1

    async def test_forbidden_transition_raises(self, repository: RequestRepository) -> None:
        """The repository refuses an edge the life cycle does not have."""
        stored = await repository.add(FIELDS, "U1", T0)
        with pytest.raises(ValueError, match="not a transition"):
            await repository.transition(stored, Status.ACTIVE, actor="U2", at=T0)

    async def test_open_name_is_claimed_case_insensitively(
        self, repository: RequestRepository
    ) -> None:
        """A second open request with the same name, in any case, is refused."""
        await repository.add(FIELDS, "U1", T0)
        upper = RequestFields("acme", "partner", "ACME_TO_PARTNER", "", "SUP")
        assert await repository.name_is_open("Acme_To_Partner", DEFAULT_SITE)
        with pytest.raises(NameTaken):
            await repository.add(upper, "U2", T0)

    async def test_closing_a_request_frees_its_name(self, repository: RequestRepository) -> None:
        """After a rejection the same name can be asked for again."""
        stored = await repository.add(FIELDS, "U1", T0)
        await repository.transition(stored, Status.REJECTED, actor="U2", at=T0, reason="no")
        assert not await repository.name_is_open(FIELDS.connection_name, DEFAULT_SITE)
        again = await repository.add(FIELDS, "U1", T0)
        assert again.id != stored.id

    async def test_every_transition_is_audited(self, repository: RequestRepository) -> None:
        """The audit trail records who moved the request, from where, to where, and when."""
        stored = await repository.add(FIELDS, "U1", T0)
        later = T0 + timedelta(minutes=5)
        moved = await repository.transition(stored, Status.INITIATING, actor="U2", at=later)
        assert moved is not None
        await repository.transition(moved, Status.FAILED, actor="exalate", at=later, error="x")
        history = await repository.history(stored.id)
        assert [(e.actor, e.from_status, e.to_status) for e in history] == [
            ("U1", None, Status.PENDING_APPROVAL),
            ("U2", Status.PENDING_APPROVAL, Status.INITIATING),
            ("exalate", Status.INITIATING, Status.FAILED),
        ]
        assert history[1].at == later

    async def test_error_belongs_to_the_state(self, repository: RequestRepository) -> None:
        """A retry clears the previous failure's message."""
        stored = await repository.add(FIELDS, "U1", T0)
        initiating = await repository.transition(stored, Status.INITIATING, actor="U2", at=T0)
        assert initiating is not None
        failed = await repository.transition(
            initiating, Status.FAILED, actor="exalate", at=T0, error="Jira is down"
        )
        assert failed is not None
        assert failed.error == "Jira is down"
        retried = await repository.transition(failed, Status.INITIATING, actor="U2", at=T0)
        assert retried is not None
        assert retried.error is None

    async def test_invitation_code_is_stored_as_given(self, repository: RequestRepository) -> None:
        """The repository keeps the (already sealed) code and reports that it has one."""
        stored = await repository.add(FIELDS, "U1", T0)
        initiating = await repository.transition(stored, Status.INITIATING, actor="U2", at=T0)
        assert initiating is not None
        invited = await repository.transition(
            initiating, Status.INVITED, actor="exalate", at=T0, invitation_code=b"sealed"
        )
        assert invited is not None
        assert invited.has_invitation_code
        assert await repository.invitation_code(stored.id) == b"sealed"

    async def test_with_status_is_newest_first(self, repository: RequestRepository) -> None:
        """Status lists put the most recent request on top."""
        first = await repository.add(FIELDS, "U1", T0)
        second = await repository.add(
            RequestFields("acme", "other", "acme_to_other", "", "SUP"), "U1", T0 + timedelta(1)
        )
        listed = await repository.with_status([Status.PENDING_APPROVAL])
        assert [request.id for request in listed] == [second.id, first.id]


def _in(site: str, name: str = FIELDS.connection_name) -> RequestFields:
    return replace(FIELDS, connection_name=name, site=site)


async def _invite(
    repository: RequestRepository, request: ConnectionRequest, connection_id: str
) -> ConnectionRequest:
    initiating = await repository.transition(request, Status.INITIATING, actor="U2", at=T0)
    assert initiating is not None
    invited = await repository.transition(
        initiating, Status.INVITED, actor="exalate", at=T0, exalate_connection_id=connection_id
    )
    assert invited is not None
    return invited


class TestSites:
    """Connection names are unique among open requests of one site; every read can keep
    to one site."""

    async def test_two_sites_may_each_hold_an_open_request_of_one_name(
        self, repository: RequestRepository
    ) -> None:
        default = await repository.add(FIELDS, "U1", T0)
        emea = await repository.add(_in("emea"), "U2", T0)
        assert (default.fields.site, emea.fields.site) == (DEFAULT_SITE, "emea")
        assert await repository.get(emea.id) == emea
        assert await repository.name_is_open("acme_to_partner", DEFAULT_SITE)
        assert await repository.name_is_open("ACME_to_partner", "emea")
        assert not await repository.name_is_open("acme_to_partner", "apac")

    async def test_one_site_refuses_the_name_in_any_case(
        self, repository: RequestRepository
    ) -> None:
        await repository.add(_in("emea"), "U1", T0)
        with pytest.raises(NameTaken):
            await repository.add(_in("emea", "ACME_TO_PARTNER"), "U2", T0)
        assert len(await repository.with_status([Status.PENDING_APPROVAL])) == 1

    async def test_closing_a_request_frees_its_name_in_its_own_site(
        self, repository: RequestRepository
    ) -> None:
        await repository.add(FIELDS, "U1", T0)
        emea = await repository.add(_in("emea"), "U1", T0)
        await repository.transition(emea, Status.REJECTED, actor="U2", at=T0, reason="no")
        assert not await repository.name_is_open(FIELDS.connection_name, "emea")
        assert await repository.name_is_open(FIELDS.connection_name, DEFAULT_SITE)
        await repository.add(_in("emea", "Acme_To_Partner"), "U1", T0)
        with pytest.raises(NameTaken):
            await repository.add(FIELDS, "U1", T0)

    async def test_lists_and_look_ups_keep_to_the_site_given(
        self, repository: RequestRepository
    ) -> None:
        default = await repository.add(FIELDS, "U1", T0)
        emea = await repository.add(_in("emea"), "U1", T0 + timedelta(minutes=1))
        other = await repository.add(_in("emea", "acme_to_other"), "U1", T0 + timedelta(2))
        pending = [Status.PENDING_APPROVAL]

        assert [r.id for r in await repository.with_status(pending)] == [
            other.id,
            emea.id,
            default.id,
        ]
        assert [r.id for r in await repository.with_status(pending, site="emea")] == [
            other.id,
            emea.id,
        ]
        assert await repository.with_status(pending, site="apac") == []

        page = await repository.page(pending, limit=1, site="emea")
        assert ([r.id for r in page.items], page.total) == ([other.id], 2)
        everywhere = await repository.page(limit=10)
        assert everywhere.total == 3

        assert (await repository.named("ACME_TO_PARTNER")) == emea
        assert (await repository.named("acme_to_partner", site=DEFAULT_SITE)) == default
        assert await repository.named("acme_to_partner", site="apac") is None
        assert await repository.sites_named("Acme_To_Partner") == [DEFAULT_SITE, "emea"]
        assert await repository.sites_named("acme_to_other") == ["emea"]
        assert await repository.sites_named("acme_to_nothing") == []

    async def test_claimed_connections_are_those_of_one_site(
        self, repository: RequestRepository
    ) -> None:
        await _invite(repository, await repository.add(FIELDS, "U1", T0), "101")
        await _invite(repository, await repository.add(_in("emea"), "U1", T0), "201")
        assert await repository.claimed_connections(DEFAULT_SITE) == ({"101"}, set())
        assert await repository.claimed_connections("emea") == ({"201"}, set())
        assert await repository.claimed_connections("apac") == (set(), set())

    async def test_open_requests_of_sites_about_to_be_removed(
        self, repository: RequestRepository
    ) -> None:
        """The start-up check: sites left out of the configuration that still have
        requests waiting, pending invitations included; closed ones do not count."""
        await repository.add(FIELDS, "U1", T0)
        await _invite(repository, await repository.add(_in("emea", "b_emea"), "U1", T0), "201")
        await repository.add(_in("emea", "a_emea"), "U1", T0)
        closed = await repository.add(_in("apac"), "U1", T0)
        await repository.transition(closed, Status.REJECTED, actor="U2", at=T0, reason="no")

        assert await repository.open_in_sites_other_than([DEFAULT_SITE]) == {
            "emea": ["a_emea", "b_emea"]
        }
        assert await repository.open_in_sites_other_than(iter([DEFAULT_SITE, "emea"])) == {}
        assert await repository.open_in_sites_other_than([]) == {
            DEFAULT_SITE: ["acme_to_partner"],
            "emea": ["a_emea", "b_emea"],
        }

    async def test_counts_by_site_and_status(self, repository: RequestRepository) -> None:
        await repository.add(FIELDS, "U1", T0)
        await repository.add(_in("emea"), "U1", T0)
        await _invite(repository, await repository.add(_in("emea", "acme_to_b"), "U1", T0), "1")
        assert await repository.count_by_site_and_status() == {
            (DEFAULT_SITE, "pending_approval"): 1,
            ("emea", "pending_approval"): 1,
            ("emea", "invited"): 1,
        }
        assert await repository.count_by_status() == {"pending_approval": 2, "invited": 1}

    async def test_the_audit_trail_names_each_event_s_site(
        self, repository: RequestRepository
    ) -> None:
        await repository.add(FIELDS, "U1", T0)
        await repository.add(_in("emea"), "U1", T0 + timedelta(minutes=1))
        trail = await repository.audit_trail(None)
        assert [(name, site) for _, name, site in trail] == [
            ("acme_to_partner", DEFAULT_SITE),
            ("acme_to_partner", "emea"),
        ]


def test_database_file_is_private(tmp_path: Path) -> None:
    """The SQLite file is created with mode 0600; its directory is not created (a typo
    in the path is refused: tests/test_start_refusals.py)."""
    path = tmp_path / "data" / "bot.db"
    path.parent.mkdir()
    make_engine(f"sqlite+aiosqlite:///{path}")
    assert os.stat(path).st_mode & 0o777 == 0o600


class TestOpenLimit:
    async def test_the_refusal_names_them_oldest_first_ties_in_order_of_submission(
        self, repository: RequestRepository
    ) -> None:
        """Requests changed at the same moment are named in the order they were made,
        whatever order the database returns rows with equal times in (PostgreSQL once
        named them p1, p0, p2 in the end-to-end test, after their cards were posted)."""
        limits = SubmissionLimits(max_open=3, per_hour=100)
        stored = [
            await repository.add(
                RequestFields("acme", f"p{n}", f"acme_to_p{n}", "", "SUP"), "U1", T0, limits
            )
            for n in range(3)
        ]
        await repository.set_card(stored[0].id, "C1:1.0")
        with pytest.raises(TooManyOpen) as refused:
            await repository.add(
                RequestFields("acme", "more", "acme_to_more", "", "SUP"), "U1", T0, limits
            )
        assert refused.value.names == ["acme_to_p0", "acme_to_p1", "acme_to_p2"]


class TestLimitsAcrossProcesses:
    async def test_engines_submitting_at_once_never_exceed_the_open_limit(
        self, database_url: str
    ) -> None:
        """Four engines on one database, as four replicas would be, each storing a
        request of the same person at once, with one open request allowed: one stored."""
        engines = [make_engine(database_url) for _ in range(4)]
        try:
            await upgrade_schema(engines[0])
            repositories = [RequestRepository(make_sessionmaker(e)) for e in engines]
            limits = SubmissionLimits(max_open=1, per_hour=100)
            results = await asyncio.gather(
                *(
                    repository.add(
                        RequestFields("acme", f"p{n}", f"acme_to_p{n}", "", "SUP"),
                        "U0ALICE",
                        datetime(2026, 11, 30, tzinfo=UTC),
                        limits,
                    )
                    for n, repository in enumerate(repositories)
                ),
                return_exceptions=True,
            )
            stored = [r for r in results if not isinstance(r, BaseException)]
            assert len(stored) == 1
            assert all(isinstance(r, TooManyOpen) for r in results if r not in stored)
        finally:
            for engine in engines:
                await engine.dispose()


async def test_a_failed_write_is_remembered_until_one_goes_through(tmp_path: Path) -> None:
    """A full disk (SQLite's page limit, here): the write fails, ``last_write_error``
    says so for /readyz, and the next write that succeeds clears it. A rule the
    database keeps (a name taken) is no failure."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await upgrade_schema(engine)
    limit = {"pages": 0}

    def cap(connection: object, _record: object) -> None:
        if limit["pages"]:
            connection.execute(f"PRAGMA max_page_count = {limit['pages']}")  # type: ignore[attr-defined]

    event.listen(engine.sync_engine, "connect", cap)
    repository = RequestRepository(make_sessionmaker(engine))
    try:
        await repository.add(FIELDS, "U1", T0)
        with pytest.raises(NameTaken):
            await repository.add(FIELDS, "U1", T0)
        assert repository.last_write_error is None
        async with engine.connect() as connection:
            pages = (await connection.exec_driver_sql("PRAGMA page_count")).scalar_one()
        await engine.dispose()
        limit["pages"] = int(pages)  # every new connection: the file may not grow

        async def fill() -> None:
            for number in range(200):
                big = replace(FIELDS, connection_name=f"n{number}", description="x" * 900)
                await repository.add(big, "U1", T0)

        with pytest.raises(OperationalError):
            await fill()
        assert repository.last_write_error is not None
        assert "full" in repository.last_write_error
        await engine.dispose()
        limit["pages"] = 0
        await repository.annotate(1, missed_polls=1)
        assert repository.last_write_error is None
    finally:
        await engine.dispose()


async def test_a_database_error_carries_no_parameter(database_url: str) -> None:
    """An error's text (and so its logged traceback) names the statement, never the
    values it carried: people's text, sealed codes."""
    engine = make_engine(database_url)
    await upgrade_schema(engine)
    try:
        async with engine.begin() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(
                    sa.text("INSERT INTO connection_request (id, status) VALUES (:id, :status)"),
                    {"id": 1, "status": "marker-value-7"},
                )
        assert "marker-value-7" not in str(raised.value)
    finally:
        await engine.dispose()
