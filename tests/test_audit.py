"""`exalate-bot audit export`: the trail as CSV or JSON, optionally from a date."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.approvals.model import RequestFields, Status
from bot.cli.main import main
from storage import RequestRepository, make_engine, make_sessionmaker, upgrade_schema

DAY1 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def _story(url: str) -> None:
    engine = make_engine(url)
    await upgrade_schema(engine)
    repository = RequestRepository(make_sessionmaker(engine))
    request = await repository.add(RequestFields("acme", "p", "acme_to_p", "", "SUP"), "U1", DAY1)
    await repository.transition(request, Status.REJECTED, actor="U2", at=DAY2, note="rejected")
    fields = RequestFields("acme", "p", "acme_to_p", "", "SUP", "eu")
    await repository.add(fields, "U3", DAY2)
    await engine.dispose()


@pytest.fixture(name="database")
def _database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    asyncio.run(_story(url))
    monkeypatch.setenv("DATABASE_URL", url)
    return url


class TestAuditExport:
    def test_json(self, database: str, capsys: pytest.CaptureFixture[str]) -> None:
        """JSON lists every event, oldest first, with who, when, from and to."""
        assert main(["audit", "export", "--format", "json"]) == 0
        events = json.loads(capsys.readouterr().out)
        assert [(e["actor"], e["from_status"], e["to_status"]) for e in events] == [
            ("U1", "", "pending_approval"),
            ("U2", "pending_approval", "rejected"),
            ("U3", "", "pending_approval"),
        ]
        assert events[0]["connection_name"] == "acme_to_p"
        assert [e["site"] for e in events] == ["default", "default", "eu"]  # same name, 2 sites
        assert events[1]["at"] == DAY2.isoformat()

    def test_csv_since(self, database: str, capsys: pytest.CaptureFixture[str]) -> None:
        """CSV with a header; --since leaves out what came before."""
        assert main(["audit", "export", "--format", "csv", "--since", "2026-11-02"]) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert [row["to_status"] for row in rows] == ["rejected", "pending_approval"]
        assert [row["site"] for row in rows] == ["default", "eu"]
        assert rows[0]["request_id"] == "1"

    def test_missing_database_is_an_error_not_an_empty_export(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A mistyped DATABASE_URL says so, and creates nothing."""
        missing = tmp_path / "typo.db"
        monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{missing}")
        assert main(["audit", "export"]) == 2
        assert "does not exist" in capsys.readouterr().err
        assert not missing.exists()

    def test_bad_date_is_refused(self, database: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A date that is not ISO 8601 is an argument error naming the option."""
        with pytest.raises(SystemExit):
            main(["audit", "export", "--since", "yesterday"])
        error = capsys.readouterr().err
        assert "argument --since: 'yesterday' is not a date such as 2026-11-01" in error
        assert "parse_since" not in error

    def test_help_explains_the_format(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--format says what each choice gives and which is the default."""
        with pytest.raises(SystemExit):
            main(["audit", "export", "--help"])
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        assert "csv: one row per transition" in text
        assert "(default: csv)" in text
