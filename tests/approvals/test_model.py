"""The life-cycle table: every allowed edge, and every edge that is not."""

from __future__ import annotations

import itertools

import pytest

from bot.approvals.model import OPEN_STATUSES, TRANSITIONS, Status, can_transition

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
