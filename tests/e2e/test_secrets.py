"""The invitation code and the tokens never leave where they belong.

One busy session (a failure, a retry, a rejection, an outsider's click, status) is run
with logs captured at DEBUG, then everything the bot sent anywhere is scanned.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bot.log import configure_logging
from handlers.ids import Action
from storage.db import sqlite_file
from tests.e2e.harness import ALICE, BOB, BOT_TOKEN, CAROL, JIRA_TOKEN, MALLORY, Harness


@pytest.fixture(name="logs")
def _logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG", [BOT_TOKEN, JIRA_TOKEN])
    root.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    yield caplog
    root.handlers[:] = handlers
    root.setLevel(level)


async def _busy_session(harness: Harness) -> str:
    """Run the interesting paths; return the invitation code Exalate issued."""
    harness.simulator.fail("create", 500)
    await harness.submit_request()
    card = await harness.slack.wait_for("chat.postMessage")
    request_id = int(card.args["blocks"][0]["text"]["text"].rsplit("#", 1)[1])
    await harness.click(Action.APPROVE, request_id, MALLORY)
    await harness.click(Action.APPROVE, request_id, BOB)
    await harness.card("failed")
    await harness.click(Action.RETRY, request_id, CAROL)
    await harness.card("invited")
    await harness.click(Action.APPROVE, request_id, BOB)  # stale click after the fact
    await harness.submit_request(remote_short_name="other")
    await harness.command("status", user=MALLORY)
    code = str(next(iter(harness.simulator.connections.values()))["invitationCode"])
    await harness.dm(ALICE, code)
    return code


class TestSecrets:
    async def test_code_reaches_only_the_requesters_dm(
        self, harness: Harness, logs: pytest.LogCaptureFixture
    ) -> None:
        """The code is in exactly one message, a DM to the requester, and nowhere else."""
        code = await _busy_session(harness)
        carrying = [call for call in harness.slack.calls if code in json.dumps(call.args)]
        assert [(call.method, call.args["channel"]) for call in carrying] == [
            ("chat.postMessage", "D" + ALICE)
        ]
        assert code not in logs.text
        assert logs.records, "the session logged nothing, so the scan proves nothing"

    async def test_tokens_never_appear_in_messages_or_logs(
        self, harness: Harness, logs: pytest.LogCaptureFixture
    ) -> None:
        """Neither the Jira token nor the bot token shows up in any payload or log line."""
        await _busy_session(harness)
        sent = json.dumps([call.args for call in harness.slack.calls])
        for token in (JIRA_TOKEN, BOT_TOKEN):
            assert token not in sent
            assert token not in logs.text

    async def test_code_is_encrypted_at_rest(self, harness: Harness) -> None:
        """The database never holds the code in clear: not in any row, and on SQLite
        neither in its file nor its write-ahead log, read as they are (disposing the
        engine instead, while a listener still held a connection, left that connection
        to the garbage collector)."""
        code = await _busy_session(harness)
        await harness.settle()
        async with harness.runtime.engine.connect() as connection:
            for table in ("connection_request", "audit_event", "replica", "lease"):
                rows = (await connection.exec_driver_sql(f"SELECT * FROM {table}")).all()  # noqa: S608
                assert rows or table == "lease"
                assert code not in repr(rows)
                assert code.encode() not in b"".join(
                    value for row in rows for value in row if isinstance(value, bytes)
                )
        database = sqlite_file(harness.runtime.settings.database_url)
        if database is None:
            return  # PostgreSQL: its files are the server's, read through SQL above
        files = sorted(database.parent.glob(f"{database.name}*"))
        assert database in files
        for file in files:
            assert code.encode() not in file.read_bytes()
