"""Moving to another database: the history of an SQLite file made by an earlier version,
copied into an empty database of each kind, arrives whole and keeps working."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.approvals.model import AuditEvent, ConnectionRequest, RequestFields, Status
from bot.cli.main import main
from storage import RequestRepository, make_engine, make_sessionmaker, upgrade_schema
from storage.copy import TargetNotEmpty, copy_history
from tests.storage.test_schema import MADE_BY_CREATE_SCHEMA

History = tuple[list[ConnectionRequest | None], list[tuple[AuditEvent, str, str]], bytes | None]


async def _everything(url: str) -> History:
    """The five requests, the audit trail and request 2's sealed code, as the bot reads them."""
    engine = make_engine(url)
    try:
        repository = RequestRepository(make_sessionmaker(engine))
        requests = [await repository.get(request_id) for request_id in range(1, 6)]
        trail = list(await repository.audit_trail(None))
        return requests, trail, await repository.invitation_code(2)
    finally:
        await engine.dispose()


@pytest.fixture(name="old_file")
def _old_file(tmp_path: Path) -> str:
    path = tmp_path / "exalate-bot.db"
    shutil.copy(MADE_BY_CREATE_SCHEMA, path)
    return f"sqlite+aiosqlite:///{path}"


async def test_every_request_and_event_arrives_and_new_ids_follow_them(
    old_file: str, database_url: str
) -> None:
    source, target = make_engine(old_file), make_engine(database_url)
    try:
        await upgrade_schema(source)
        await upgrade_schema(target)
        copied = await copy_history(source, target)
    finally:
        await source.dispose()
        await target.dispose()
    assert (copied.requests, copied.audit_events) == (5, 9)
    before, after = await _everything(old_file), await _everything(database_url)
    assert after == before
    assert after[2] == b"gAAAA-sealed-bytes"
    assert all(request is not None for request in after[0])

    # The next request and its audit event get fresh ids (PostgreSQL's sequences moved).
    engine = make_engine(database_url)
    try:
        repository = RequestRepository(make_sessionmaker(engine))
        fresh = await repository.add(
            RequestFields("acme", "q", "acme_to_q", "", "SUP"), "U9", datetime.now(UTC)
        )
        assert fresh.id == 6
        rejected = await repository.transition(
            fresh, Status.REJECTED, actor="U1", at=datetime.now(UTC), reason="no"
        )
        assert rejected is not None
    finally:
        await engine.dispose()


async def test_each_request_keeps_its_site(tmp_path: Path, database_url: str) -> None:
    """One name open in two sites arrives as two requests, each in its own site."""
    source_url = f"sqlite+aiosqlite:///{tmp_path / 'sites.db'}"
    source, target = make_engine(source_url), make_engine(database_url)
    try:
        await upgrade_schema(source)
        await upgrade_schema(target)
        repository = RequestRepository(make_sessionmaker(source))
        stored = [
            await repository.add(
                RequestFields("acme", "p", "acme_to_p", "", "SUP", site), "U1", datetime.now(UTC)
            )
            for site in ("default", "emea")
        ]
        await copy_history(source, target)
        copied = RequestRepository(make_sessionmaker(target))
        assert [await copied.get(request.id) for request in stored] == stored
        assert await copied.sites_named("acme_to_p") == ["default", "emea"]
    finally:
        await source.dispose()
        await target.dispose()


async def test_a_database_with_requests_is_refused_and_left_as_it_was(
    old_file: str, database_url: str
) -> None:
    source, target = make_engine(old_file), make_engine(database_url)
    try:
        await upgrade_schema(source)
        await upgrade_schema(target)
        await copy_history(source, target)
        with pytest.raises(TargetNotEmpty, match="just been migrated"):
            await copy_history(source, target)
    finally:
        await source.dispose()
        await target.dispose()
    assert len((await _everything(database_url))[1]) == 9


async def test_migrate_copy_from_says_what_it_did(
    old_file: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["migrate", "--copy-from", old_file]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "upgraded from empty to" in lines[0]
    assert "made before migrations, adopted" in lines[1]
    assert lines[2].startswith("Copied 5 requests and 9 audit events from sqlite")
    assert await asyncio.to_thread(main, ["migrate", "--copy-from", old_file]) == 2
    assert "already holds rows in connection_request" in capsys.readouterr().err
