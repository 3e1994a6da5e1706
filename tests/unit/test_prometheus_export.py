"""The live /metrics text of fixed records: every family, label and value, read back with
prometheus_client's own parser."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiperf_hpc.core.live_stats import TTFT_BOUNDS_S, LiveAggregator, LiveStatus
from aiperf_hpc.live.prometheus import render_prometheus
from tests.unit.test_live_stats import record, success

FAMILIES = {
    "aiperf_requests": "counter",
    "aiperf_request_errors": "counter",
    "aiperf_output_tokens": "counter",
    "aiperf_input_tokens": "counter",
    "aiperf_time_to_first_token_seconds": "histogram",
    "aiperf_inter_token_latency_seconds": "histogram",
    "aiperf_request_latency_seconds": "histogram",
    "aiperf_requests_in_flight": "gauge",
    "aiperf_workers_alive": "gauge",
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def fixed_status() -> LiveStatus:
    live = LiveAggregator()
    live.add(
        [
            success(0, ttft_ms=10, latency_ms=50, output_tokens=5),
            success(1, ttft_ms=30, latency_ms=70, output_tokens=5, node="n1", worker_id="w1"),
            record(2, error_type="http_error", status_code=500),
            record(3, error_type="cancelled"),
            record(4, phase="warmup"),
        ],
        now_ns=0,
    )
    return LiveStatus(stats=live.snapshot(now_ns=0), in_flight=3, workers_alive=2, workers_by_node={"n0": 1, "n1": 1})


def test_every_family_has_its_type() -> None:
    text = render_prometheus(fixed_status()).decode()
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert types == FAMILIES


def test_counters_and_gauges_have_the_exact_values() -> None:
    values = samples(render_prometheus(fixed_status()).decode())
    n0, n1 = (("node", "n0"),), (("node", "n1"),)
    assert values[("aiperf_requests_total", n0)] == 3  # success, error, cancelled; warmup left out
    assert values[("aiperf_requests_total", n1)] == 1
    assert values[("aiperf_request_errors_total", (("error_type", "http_error"), ("node", "n0")))] == 1
    assert not any(name == "aiperf_request_errors_total" and ("node", "n1") in labels for name, labels in values)
    assert values[("aiperf_output_tokens_total", n0)] == 5
    assert values[("aiperf_input_tokens_total", n1)] == 100
    assert values[("aiperf_requests_in_flight", ())] == 3
    assert values[("aiperf_workers_alive", ())] == 2


def test_histograms_are_consistent_and_exact() -> None:
    values = samples(render_prometheus(fixed_status()).decode())
    name = "aiperf_time_to_first_token_seconds"
    buckets = [values[(f"{name}_bucket", (("le", repr(bound)), ("node", "n1")))] for bound in TTFT_BOUNDS_S]
    assert buckets == [0 if bound < 0.04 else 1 for bound in TTFT_BOUNDS_S]  # one TTFT of 30 ms on n1
    assert values[(f"{name}_bucket", (("le", "+Inf"), ("node", "n1")))] == 1
    assert values[(f"{name}_count", (("node", "n1"),))] == 1
    assert values[(f"{name}_sum", (("node", "n1"),))] == pytest.approx(0.030)
    for family in ("aiperf_inter_token_latency_seconds", "aiperf_request_latency_seconds"):
        for node in ("n0", "n1"):
            series = [v for (n, labels), v in values.items() if n == f"{family}_bucket" and ("node", node) in labels]
            assert series == sorted(series)  # cumulative
            assert series[-1] == values[(f"{family}_count", (("node", node),))] == 1


def test_before_the_first_figures_the_families_have_no_samples() -> None:
    empty = LiveStatus(stats=None, in_flight=None, workers_alive=None, workers_by_node={})
    families: list[Any] = list(text_string_to_metric_families(render_prometheus(empty).decode()))
    assert {family.name for family in families} == set(FAMILIES)
    assert all(not family.samples for family in families)
