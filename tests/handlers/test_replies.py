"""What a person is told privately when an action changed nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.approvals.errors import Conflict
from bot.approvals.model import ConnectionRequest, Problem, RequestFields, Status
from handlers.blocks.replies import explain

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_failed_request_is_explained_without_exalate_s_words() -> None:
    """The requester cancelling a request that failed meanwhile is told it failed, not
    what Exalate answered (its text may name internal addresses): that is the card's."""
    failed = ConnectionRequest(
        7,
        Status.FAILED,
        3,
        RequestFields("acme", "p", "acme_to_p", "", "SUP"),
        "U0ALICE",
        T0,
        T0,
        decided_by="U0BOB",
        error=Problem.EXALATE,
        error_detail="Redirected to https://sso.internal.example/login?next=/rest",
    )
    said = explain(Conflict(failed))
    assert "Nothing changed; request #7" in said
    assert "failed" in said
    assert "internal" not in said
    assert "https://" not in said
