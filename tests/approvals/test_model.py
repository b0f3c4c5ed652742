"""The life-cycle table: every allowed edge, and every edge that is not; and the
invitation code's sub-states of a request waiting for its code or its partner."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.approvals.model import (
    OPEN_STATUSES,
    TRANSITIONS,
    CodeDelivery,
    ConnectionRequest,
    RequestFields,
    Status,
    can_transition,
)

ALLOWED = {
    (Status.PENDING_APPROVAL, Status.INITIATING),
    (Status.PENDING_APPROVAL, Status.REJECTED),
    (Status.PENDING_APPROVAL, Status.CANCELLED),
    (Status.PENDING_APPROVAL, Status.EXPIRED),
    (Status.INITIATING, Status.INVITED),
    (Status.INITIATING, Status.FAILED),
    (Status.INITIATING, Status.ASSISTED),
    (Status.ASSISTED, Status.INVITED),
    (Status.ASSISTED, Status.ACTIVE),
    (Status.ASSISTED, Status.DEACTIVATED),
    (Status.ASSISTED, Status.EXPIRED),
    (Status.FAILED, Status.INITIATING),
    (Status.FAILED, Status.INVITED),
    (Status.FAILED, Status.REJECTED),
    (Status.INVITED, Status.ACTIVE),
    (Status.INVITED, Status.DEACTIVATED),
    (Status.INVITED, Status.EXPIRED),
    (Status.INVITED, Status.GONE),
}


class TestTransitions:
    @pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
    def test_allowed_edge(self, source: Status, target: Status) -> None:
        """Each edge of the architecture's life-cycle diagram is allowed."""
        assert can_transition(source, target)

    @pytest.mark.parametrize(
        ("source", "target"),
        [pair for pair in itertools.product(Status, Status) if pair not in ALLOWED],
    )
    def test_forbidden_edge(self, source: Status, target: Status) -> None:
        """Every other pair, self-loops included, is refused."""
        assert not can_transition(source, target)

    def test_every_status_has_a_row(self) -> None:
        """The table names every status, so a new status cannot be forgotten."""
        assert set(TRANSITIONS) == set(Status)

    def test_open_statuses_are_those_that_can_still_reach_a_connection(self) -> None:
        """A request claims its name exactly while it can still become or is a pending invite."""
        assert {
            Status.PENDING_APPROVAL,
            Status.INITIATING,
            Status.ASSISTED,
            Status.FAILED,
            Status.INVITED,
        } == OPEN_STATUSES


def _request(status: Status, **changes: Any) -> ConnectionRequest:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    fields = RequestFields("acme", "partner", "acme_to_partner", "", "SUP")
    return ConnectionRequest(7, status, 3, fields, "U0ALICE", now, now, **changes)


class TestCodeDelivery:
    """The invitation code's way to the requester, as the delivery records it."""

    @pytest.mark.parametrize(
        ("status", "changes", "expected"),
        [
            (Status.ASSISTED, {}, CodeDelivery.NEVER_RECEIVED),
            (Status.INVITED, {"error": "adopted, code lost"}, CodeDelivery.NEVER_RECEIVED),
            (Status.INVITED, {"has_invitation_code": True}, CodeDelivery.SENDING),
            (
                Status.INVITED,
                {"has_invitation_code": True, "error": "DM refused"},
                CodeDelivery.UNDELIVERED,
            ),
            (
                Status.INVITED,
                {"has_invitation_code": True, "code_dm_ref": "D1:1"},
                CodeDelivery.DELIVERED,
            ),
        ],
    )
    def test_sub_states(
        self, status: Status, changes: dict[str, Any], expected: CodeDelivery
    ) -> None:
        """Each combination the service writes reads as the step the code reached."""
        assert _request(status, **changes).code_delivery is expected

    @pytest.mark.parametrize("status", sorted(set(Status) - {Status.ASSISTED, Status.INVITED}))
    def test_none_where_no_code_is_on_its_way(self, status: Status) -> None:
        """Before a connection exists, and once its invitation is settled (the spent
        code's DM ref stays), there is no delivery to speak of."""
        request = _request(status, code_dm_ref="D1:1", error="failed")
        assert request.code_delivery is None
