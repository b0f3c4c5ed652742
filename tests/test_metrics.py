"""``GET /metrics``'s text, as a Prometheus scrape would parse it."""

from __future__ import annotations

import sys

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import LATENCY_BUCKETS, Metrics

CREATE = "POST /rest/issuehub/4.0/connections"


def _families(
    metrics: Metrics, states: dict[str, int] | None = None, *, listeners_running: int = 0
) -> dict[str, Metric]:
    """The scrape, with ``states`` counted on the site ``default``."""
    by_site = {("default", state): count for state, count in (states or {}).items()}
    text = metrics.render(by_site, listeners_running=listeners_running)
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(family: Metric, name: str, **labels: str) -> float:
    """The one sample of ``family`` with this name and exactly these labels."""
    (value,) = [s.value for s in family.samples if s.name == name and s.labels == labels]
    return value


def test_the_bots_families_keep_their_names_and_types() -> None:
    """Dashboards and alerts written against the hand-made text still find every series:
    the same names and types, and no ``*_created`` series beside them."""
    metrics = Metrics()
    metrics.count_approval()
    metrics.count_error("ExalateServerError")
    metrics.observe_call("eu", CREATE, 0.2)
    families = _families(metrics, {"pending_approval": 1})
    types = {name: families[name].type for name in families if name.startswith("exalate_bot_")}
    assert types == {
        "exalate_bot_requests": "gauge",
        "exalate_bot_database_up": "gauge",
        "exalate_bot_listeners_running": "gauge",
        "exalate_bot_approvals": "counter",  # the parser drops ``_total`` from the family
        "exalate_bot_errors": "counter",
        "exalate_bot_exalate_call_seconds": "histogram",
    }
    names = {s.name for name in types for s in families[name].samples}
    assert names == {
        "exalate_bot_requests",
        "exalate_bot_database_up",
        "exalate_bot_listeners_running",
        "exalate_bot_approvals_total",
        "exalate_bot_errors_total",
        "exalate_bot_exalate_call_seconds_bucket",
        "exalate_bot_exalate_call_seconds_count",
        "exalate_bot_exalate_call_seconds_sum",
    }


def test_counters_count_and_the_histogram_buckets() -> None:
    metrics = Metrics()
    metrics.count_approval()
    metrics.count_approval()
    metrics.count_error("ExalateServerError")
    metrics.count_error("ExalateServerError")
    metrics.count_error("slack_not_in_channel")
    metrics.observe_call("eu", CREATE, 0.1)  # a bound counts in its own bucket (le is <=)
    metrics.observe_call("eu", CREATE, 3.0)
    families = _families(metrics)
    assert _value(families["exalate_bot_approvals"], "exalate_bot_approvals_total") == 2
    errors = families["exalate_bot_errors"]
    assert _value(errors, "exalate_bot_errors_total", kind="ExalateServerError", site="") == 2
    assert _value(errors, "exalate_bot_errors_total", kind="slack_not_in_channel", site="") == 1
    calls = families["exalate_bot_exalate_call_seconds"]
    buckets = {
        float(s.labels["le"]): s.value
        for s in calls.samples
        if s.name.endswith("_bucket") and s.labels["call"] == CREATE and s.labels["site"] == "eu"
    }
    assert sorted(buckets) == [*LATENCY_BUCKETS, float("inf")]
    assert (buckets[0.05], buckets[0.1], buckets[2.5], buckets[5.0]) == (0, 1, 1, 2)
    assert _value(calls, "exalate_bot_exalate_call_seconds_count", site="eu", call=CREATE) == 2
    total = _value(calls, "exalate_bot_exalate_call_seconds_sum", site="eu", call=CREATE)
    assert total == pytest.approx(3.1)


def test_requests_by_state_are_those_of_the_scrape() -> None:
    """The gauge is the database's count at each scrape: a state left empty is gone."""
    metrics = Metrics()
    _families(metrics, {"pending_approval": 2, "invited": 1})
    requests = _families(metrics, {"invited": 3})["exalate_bot_requests"]
    assert [(s.labels, s.value) for s in requests.samples] == [
        ({"site": "default", "state": "invited"}, 3)
    ]


def test_each_site_has_its_series() -> None:
    """Requests and calls are counted per site; errors name the site at fault."""
    metrics = Metrics()
    metrics.observer("us")(CREATE, 0.2)
    metrics.count_error("ExalateTimeout", site="us")
    text = metrics.render({("eu", "invited"): 1, ("us", "invited"): 2}, listeners_running=0)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    requests = families["exalate_bot_requests"]
    assert _value(requests, "exalate_bot_requests", site="us", state="invited") == 2
    assert _value(requests, "exalate_bot_requests", site="eu", state="invited") == 1
    errors = families["exalate_bot_errors"]
    assert _value(errors, "exalate_bot_errors_total", kind="ExalateTimeout", site="us") == 1
    calls = families["exalate_bot_exalate_call_seconds"]
    assert _value(calls, "exalate_bot_exalate_call_seconds_count", site="us", call=CREATE) == 1


def test_listeners_running_are_those_of_the_scrape() -> None:
    metrics = Metrics()
    _families(metrics, listeners_running=3)
    running = _families(metrics, listeners_running=1)["exalate_bot_listeners_running"]
    assert _value(running, "exalate_bot_listeners_running") == 1


@pytest.mark.skipif(sys.platform != "linux", reason="the process collector reads /proc")
def test_process_and_python_families_are_there() -> None:
    families = _families(Metrics())
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert families["python_info"].type == "gauge"
    assert "python_gc_collections" in families


def test_each_instance_counts_on_its_own() -> None:
    """Runtimes built side by side in one process (the tests do) neither clash nor share."""
    first, second = Metrics(), Metrics()
    first.count_approval()
    for metrics, expected in ((first, 1), (second, 0)):
        family = _families(metrics)["exalate_bot_approvals"]
        assert _value(family, "exalate_bot_approvals_total") == expected
