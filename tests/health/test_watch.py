"""The rules of one poll (``bot.health.watch``): what opens, holds and resolves, and what
the watch remembers, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.exalate.models import Connection, SyncQueue
from bot.health.model import Kind, NodeTrouble, incident_key
from bot.health.watch import (
    Poll,
    QueueRule,
    Verdict,
    WatchState,
    assess,
    assess_failure,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
POLL = timedelta(seconds=30)
RULE = QueueRule(threshold=100, window=timedelta(minutes=10))
SITE = "eu"
ERROR_KEY = incident_key(SITE, Kind.CONNECTION, "to-partner")
OUT_KEY = incident_key(SITE, Kind.QUEUE, "outgoing")
NODE_KEY = incident_key(SITE, Kind.NODE, "")


def poll(
    at: datetime, statuses: dict[str, str], queues: dict[SyncQueue, int] | None = None
) -> Poll:
    connections = [Connection(id=i, name=n, status=s) for i, (n, s) in enumerate(statuses.items())]
    return Poll(SITE, at, connections, True, queues or {})


class Watch:
    """A site's watch over polls, keeping the open incidents as the store would."""

    def __init__(self) -> None:
        self.state = WatchState()
        self.open: set[str] = set()
        self.at = T0

    def polled(
        self, statuses: dict[str, str], queues: dict[SyncQueue, int] | None = None
    ) -> Verdict:
        verdict = assess(self.state, poll(self.at, statuses, queues), set(self.open), RULE)
        return self._apply(verdict)

    def failed(self, trouble: NodeTrouble = NodeTrouble.UNREACHABLE) -> Verdict:
        return self._apply(assess_failure(self.state, SITE, trouble, set(self.open)))

    def _apply(self, verdict: Verdict) -> Verdict:
        self.open |= {c.key for c in verdict.opening}
        self.open -= set(verdict.resolving)
        self.state = WatchState.from_json(self.state.to_json())  # as stored between polls
        self.at += POLL
        return verdict


def test_error_opens_on_the_second_poll_in_a_row_and_only_then() -> None:
    watch = Watch()
    assert watch.polled({"to-partner": "ACTIVE"}) == Verdict()
    assert watch.polled({"to-partner": "ERROR"}).opening == []
    opened = watch.polled({"to-partner": "ERROR"}).opening
    assert [(c.key, c.detail) for c in opened] == [(ERROR_KEY, "ERROR")]
    for _ in range(100):
        verdict = watch.polled({"to-partner": "ERROR"})
        assert verdict.opening == []
        assert verdict.resolving == []
        assert [c.key for c in verdict.holding] == [ERROR_KEY]


def test_a_one_poll_blip_opens_nothing() -> None:
    watch = Watch()
    for status in ("ACTIVE", "ERROR", "ACTIVE", "ERROR", "ACTIVE", "ERROR", "ACTIVE"):
        assert watch.polled({"to-partner": status}).opening == []


def test_an_incident_resolves_after_two_clear_polls_and_not_on_a_blip() -> None:
    watch = Watch()
    watch.polled({"to-partner": "ERROR"})
    watch.polled({"to-partner": "ERROR"})
    assert watch.polled({"to-partner": "ACTIVE"}).resolving == []
    assert watch.polled({"to-partner": "ERROR"}).resolving == []  # back: the count restarts
    assert watch.polled({"to-partner": "ACTIVE"}).resolving == []
    assert watch.polled({"to-partner": "ACTIVE"}).resolving == [ERROR_KEY]


def test_deactivated_counts_only_after_being_seen_active() -> None:
    watch = Watch()
    for _ in range(3):
        assert watch.polled({"paused-on-purpose": "DEACTIVATED"}).opening == []
    watch.polled({"was-syncing": "Active"})
    watch.polled({"was-syncing": "Deactivated"})
    opened = watch.polled({"was-syncing": "Deactivated"}).opening
    assert [c.detail for c in opened] == ["Deactivated"]  # Exalate's spelling, verbatim


def test_a_status_change_while_open_holds_with_the_new_detail() -> None:
    watch = Watch()
    watch.polled({"to-partner": "ERROR"})
    watch.polled({"to-partner": "ERROR"})
    verdict = watch.polled({"to-partner": "DEACTIVATED"})
    assert [(c.key, c.detail) for c in verdict.holding] == [(ERROR_KEY, "DEACTIVATED")]


def test_unknown_statuses_are_not_incidents() -> None:
    watch = Watch()
    for _ in range(3):
        assert watch.polled({"to-partner": "SUSPENDED_BY_ADMIN"}).opening == []


def test_a_connection_missing_from_an_incomplete_list_is_not_resolved() -> None:
    watch = Watch()
    watch.polled({"to-partner": "ERROR"})
    watch.polled({"to-partner": "ERROR"})
    for _ in range(3):
        partial = Poll(SITE, watch.at, [], False, {})
        verdict = assess(watch.state, partial, set(watch.open), RULE)
        assert verdict.resolving == []
        watch._apply(verdict)


def test_a_queue_above_the_threshold_opens_only_when_not_lower_than_ten_minutes_ago() -> None:
    watch = Watch()
    sizes = [150] * 21  # ten minutes of polls at 150, then one more
    verdicts = [watch.polled({}, {SyncQueue.OUTGOING: size}) for size in sizes]
    assert all(v.opening == [] for v in verdicts[:21])
    opened = watch.polled({}, {SyncQueue.OUTGOING: 150}).opening
    assert [(c.key, c.detail) for c in opened] == [(OUT_KEY, "150")]


def test_a_large_queue_that_drains_is_not_stuck_and_draining_resolves() -> None:
    watch = Watch()
    for step in range(40):
        assert watch.polled({}, {SyncQueue.OUTGOING: 1000 - step * 10}).opening == []
    for _ in range(23):
        watch.polled({}, {SyncQueue.OUTGOING: 700})
    assert OUT_KEY in watch.open
    watch.polled({}, {SyncQueue.OUTGOING: 650})  # lower than ten minutes ago: draining
    assert watch.polled({}, {SyncQueue.OUTGOING: 600}).resolving == [OUT_KEY]


def test_a_queue_at_the_threshold_is_not_stuck() -> None:
    watch = Watch()
    for _ in range(40):
        assert watch.polled({}, {SyncQueue.INCOMING: 100}).opening == []


def test_an_unread_queue_neither_opens_nor_resolves() -> None:
    watch = Watch()
    for _ in range(23):
        watch.polled({}, {SyncQueue.OUTGOING: 500})
    assert OUT_KEY in watch.open
    for _ in range(5):
        assert watch.polled({}, {}).resolving == []


def test_samples_are_kept_for_the_window_only() -> None:
    watch = Watch()
    for _ in range(200):
        watch.polled({}, {SyncQueue.OUTGOING: 5})
    assert len(watch.state.samples) <= RULE.window / POLL + 2


def test_the_node_opens_after_three_failed_polls_and_resolves_when_it_answers() -> None:
    watch = Watch()
    watch.polled({"to-partner": "ACTIVE"})
    assert watch.failed().opening == []
    assert watch.failed().opening == []
    opened = watch.failed(NodeTrouble.CREDENTIALS).opening
    assert [(c.key, c.detail) for c in opened] == [(NODE_KEY, "credentials refused")]
    assert [c.key for c in watch.failed().holding] == [NODE_KEY]
    assert watch.polled({"to-partner": "ACTIVE"}).resolving == [NODE_KEY]


def test_no_connection_incident_opens_or_resolves_while_the_node_is_down() -> None:
    watch = Watch()
    watch.polled({"to-partner": "ERROR"})
    watch.polled({"to-partner": "ERROR"})
    for _ in range(10):
        verdict = watch.failed()
        assert ERROR_KEY not in verdict.resolving
        assert all(c.kind is Kind.NODE for c in verdict.opening + verdict.holding)
    assert ERROR_KEY in watch.open


def test_two_failures_then_an_answer_open_nothing() -> None:
    watch = Watch()
    for _ in range(5):
        watch.failed()
        watch.failed()
        assert watch.polled({}).opening == []
    assert watch.open == set()
