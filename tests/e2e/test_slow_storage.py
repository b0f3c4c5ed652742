"""A database that is slow to store a request (another writer holds its lock) must not
make Slack show the person an error for a request that was stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.approvals.model import Status
from tests.e2e.harness import APPROVAL_CHANNEL, Harness


@asynccontextmanager
async def _writes_held(database_url: str) -> AsyncIterator[None]:
    """Another writer holds the requests table's lock until the block ends."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await connection.exec_driver_sql("BEGIN")
                await connection.exec_driver_sql(
                    "LOCK TABLE connection_request IN SHARE ROW EXCLUSIVE MODE"
                )
            try:
                yield
            finally:
                await connection.exec_driver_sql("COMMIT")
    finally:
        await engine.dispose()


async def test_a_request_slow_to_store_is_answered_in_time_and_stored_once(
    harness: Harness, bot_database_url: str
) -> None:
    """Storing waits for another writer for longer than Slack waits: the form says
    "Saving…" in time, the request is stored once and its card posted, and the form
    then says it was saved. No error is shown for a stored request."""
    await harness.site().projects.get(wait=2)
    await harness.site().connections.get(wait=2)
    async with _writes_held(bot_database_url):
        reply = await harness.submit_request()  # the harness fails it if later than 3 s
        assert reply.body["response_action"] == "update"
        assert "Saving your request" in str(reply.body["view"])
    saved = await harness.slack.wait_for(
        "views.update", lambda call: "Saved as request #1" in str(call.args["view"])
    )
    assert saved.args["view"]["type"] == "modal"
    await harness.settle()
    request = await harness.repository_request(1)
    assert request.status is Status.PENDING_APPROVAL
    cards = [
        c
        for c in harness.slack.calls_to("chat.postMessage")
        if c.args.get("channel") == APPROVAL_CHANNEL
    ]
    assert len(cards) == 1
    assert not await asyncio.wait_for(harness.runtime.repository.get(2), 1)
