"""A message's snapshot of its request: read back whole, and readable by the version
before (a rolling upgrade runs both)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.approvals.model import ConnectionRequest, RequestFields, Status
from bot.approvals.routes import Rule
from storage.rows import from_snapshot, snapshot

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
REQUEST = ConnectionRequest(
    1, Status.PENDING_APPROVAL, 1, RequestFields("acme", "p", "acme_to_p", "", "SUP"), "U0A", T0, T0
)
ADDED_BY_ROUTES = {"route", "approved_by", "escalated_at"}


def test_a_routed_request_is_read_back_whole() -> None:
    rule = Rule(("S0LEADS",), 2, "C0S", timedelta(hours=4), ("S0ADMINS",), route=1)
    routed = replace(REQUEST, route=rule, approved_by=("U0DAN",), escalated_at=T0)
    assert from_snapshot(snapshot(routed)) == routed


def test_a_request_without_a_route_is_written_as_the_version_before_wrote_it() -> None:
    """Revision 0005's replicas build a request from every key of a snapshot: keys
    they do not know would fail them, so a request no route decides has none."""
    written = json.loads(snapshot(REQUEST))
    assert not ADDED_BY_ROUTES & set(written)
    assert from_snapshot(snapshot(REQUEST)) == REQUEST


def test_keys_of_a_later_version_are_ignored() -> None:
    later = json.loads(snapshot(REQUEST)) | {"introduced_later": 1}
    assert from_snapshot(json.dumps(later)) == REQUEST
