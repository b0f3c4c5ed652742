"""What ``GET /metrics`` shows, in Prometheus' text format, without a client library.

Four families: requests by state (read from the database when scraped), approvals,
the latency of each kind of call to Exalate/Jira, and errors by kind.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)


@dataclass
class _Latency:
    """One histogram series: cumulative bucket counts, their sum and count."""

    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    total: float = 0.0
    count: int = 0


class Metrics:
    """In-process counters; one instance per bot process."""

    def __init__(self) -> None:
        self.approvals = 0
        self.errors: Counter[str] = Counter()
        self._calls: dict[str, _Latency] = {}

    def count_approval(self) -> None:
        self.approvals += 1

    def count_error(self, kind: str) -> None:
        self.errors[kind] += 1

    def observe_call(self, call: str, seconds: float) -> None:
        """Record one call to Exalate/Jira, e.g. ``POST /rest/issuehub/4.0/connections``."""
        series = self._calls.setdefault(call, _Latency())
        for index in range(bisect.bisect_left(LATENCY_BUCKETS, seconds), len(LATENCY_BUCKETS)):
            series.buckets[index] += 1
        series.total += seconds
        series.count += 1

    def render(self, states: Mapping[str, int]) -> str:
        """The text a Prometheus scrape receives; ``states`` counts requests by state."""
        errors = sorted(self.errors.items())
        lines = [
            "# HELP exalate_bot_requests Connection requests by state.",
            "# TYPE exalate_bot_requests gauge",
            *(f'exalate_bot_requests{{state="{s}"}} {n}' for s, n in sorted(states.items())),
            "# HELP exalate_bot_approvals_total Approvals that won and started a connection.",
            "# TYPE exalate_bot_approvals_total counter",
            f"exalate_bot_approvals_total {self.approvals}",
            "# HELP exalate_bot_errors_total Failures by kind.",
            "# TYPE exalate_bot_errors_total counter",
            *(f'exalate_bot_errors_total{{kind="{k}"}} {n}' for k, n in errors),
            "# HELP exalate_bot_exalate_call_seconds Latency of calls to Exalate and Jira.",
            "# TYPE exalate_bot_exalate_call_seconds histogram",
        ]
        for call, series in sorted(self._calls.items()):
            label = f'call="{call}"'
            name = "exalate_bot_exalate_call_seconds"
            lines += [
                f'{name}_bucket{{{label},le="{bound:g}"}} {count}'
                for bound, count in zip(LATENCY_BUCKETS, series.buckets, strict=True)
            ]
            lines += [
                f'{name}_bucket{{{label},le="+Inf"}} {series.count}',
                f"{name}_sum{{{label}}} {series.total:.6f}",
                f"{name}_count{{{label}}} {series.count}",
            ]
        return "\n".join(lines) + "\n"
