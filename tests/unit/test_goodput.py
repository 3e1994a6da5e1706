"""Goodput: the --goodput spec parser, and which hand-made requests count as good."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aiperf_hpc.core.goodput import count_good
from aiperf_hpc.core.metrics import METRIC_UNITS, RunMetrics, compute_metrics
from aiperf_hpc.errors import UsageError
from aiperf_hpc.option_spec import GOODPUT_METRICS, parse_goodput_spec
from aiperf_hpc.protocol.messages import RequestRecord

MS = 1_000_000
BASE_WALL_NS = 1_700_000_000_000_000_000


def test_parse_the_issue_example() -> None:
    spec = "time_to_first_token:200 inter_token_latency:20 request_latency:3000"
    assert parse_goodput_spec(spec) == {
        "time_to_first_token": 200.0,
        "inter_token_latency": 20.0,
        "request_latency": 3000.0,
    }


def test_parse_accepts_every_per_request_metric_fractions_commas_and_extra_spaces() -> None:
    spec = "  time_to_second_token:1.5,output_token_throughput_per_user:600  time_to_first_token_from_intended:2e2\t"
    assert parse_goodput_spec(spec) == {
        "time_to_second_token": 1.5,
        "output_token_throughput_per_user": 600.0,
        "time_to_first_token_from_intended": 200.0,
    }
    for name in GOODPUT_METRICS:
        assert name in METRIC_UNITS
        assert parse_goodput_spec(f"{name}:1") == {name: 1.0}


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("time_to_first_token", "'time_to_first_token' is not name:value"),
        ("time_to_first_token:", "'time_to_first_token:' is not name:value"),
        (":200", "':200' is not name:value"),
        ("ttft:200", "unknown metric 'ttft'"),
        ("inter_chunk_latency:5", "unknown metric 'inter_chunk_latency'"),
        ("request_latency:fast", "'request_latency:fast' has a value that is not a number"),
        ("request_latency:0", "'request_latency:0' needs a value > 0"),
        ("request_latency:-5", "'request_latency:-5' needs a value > 0"),
        ("request_latency:nan", "'request_latency:nan' needs a value > 0"),
        ("request_latency:inf", "'request_latency:inf' needs a value > 0"),
        ("request_latency:1 request_latency:2", "'request_latency' is given twice"),
    ],
)
def test_parse_rejects_a_bad_spec_with_one_line_naming_the_bad_part(spec: str, names: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        parse_goodput_spec(spec)
    message = str(excinfo.value)
    assert names in message
    assert message.startswith("--goodput")
    assert "\n" not in message


def test_count_good_treats_nan_as_not_good_for_ceilings_and_floors() -> None:
    values = {
        "request_latency": np.array([1.0, 5.0, np.nan, 2.0]),
        "output_token_throughput_per_user": np.array([10.0, 10.0, 10.0, np.nan]),
    }
    assert count_good(values, {"request_latency": 2.0}, 4) == 2
    assert count_good(values, {"output_token_throughput_per_user": 10.0}, 4) == 3
    assert count_good(values, {"request_latency": 2.0, "output_token_throughput_per_user": 10.0}, 4) == 1
    assert count_good(values, {}, 4) == 4


def record(**fields: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "credit_id": 0,
        "phase": "profiling",
        "worker_id": "w0",
        "node": "n0",
        "conversation_index": 0,
    }
    return RequestRecord(**(defaults | fields)).model_dump(mode="json")


def records() -> list[dict[str, Any]]:
    """Three successes, one error and one lost request; benchmark duration 303 ms.

    A: lag  2, latency 30, times [10, 20], 3 out -> TTFT 10, TTST 10, ITL 10, 100 tok/s; from intended 32 / TTFT 12
    B: lag -1, latency 50, times [40, 45], 2 out -> TTFT 40, TTST 5,  ITL 10, 100 tok/s; from intended 49 / TTFT 39
    C: lag 10, latency 20, not streaming,  5 out -> no TTFT, TTST, ITL, tok/s;           from intended 30
    """
    return [
        record(
            credit_id=1,
            scheduled_wall_ns=BASE_WALL_NS,
            started_wall_ns=BASE_WALL_NS + 2 * MS,
            latency_ns=30 * MS,
            response_times_ns=[10 * MS, 20 * MS],
            output_tokens=3,
        ),
        record(
            credit_id=2,
            scheduled_wall_ns=BASE_WALL_NS + 100 * MS,
            started_wall_ns=BASE_WALL_NS + 99 * MS,
            latency_ns=50 * MS,
            response_times_ns=[40 * MS, 45 * MS],
            output_tokens=2,
        ),
        record(
            credit_id=3,
            scheduled_wall_ns=BASE_WALL_NS + 200 * MS,
            started_wall_ns=BASE_WALL_NS + 210 * MS,
            latency_ns=20 * MS,
            output_tokens=5,
        ),
        record(
            credit_id=4,
            scheduled_wall_ns=BASE_WALL_NS + 300 * MS,
            started_wall_ns=BASE_WALL_NS + 304 * MS,
            latency_ns=1 * MS,
            status_code=500,
            error_type="http_error",
        ),
        record(credit_id=5, started_wall_ns=BASE_WALL_NS, error_type="lost"),
    ]


def goodput_of(slos: dict[str, float]) -> RunMetrics:
    return compute_metrics(records(), goodput=slos)


@pytest.mark.parametrize(
    ("slos", "good"),
    [
        ({"time_to_first_token": 20}, 1),  # A; B is too slow and C has no TTFT
        ({"time_to_first_token": 40}, 2),  # the SLO itself is met
        ({"time_to_second_token": 5}, 1),  # B
        ({"inter_token_latency": 10}, 2),  # A and B exactly; C has no ITL
        ({"inter_token_latency": 9.99}, 0),
        ({"request_latency": 31}, 2),  # A and C
        ({"request_latency_from_intended": 31}, 1),  # only C once the send lag is added
        ({"time_to_first_token_from_intended": 12}, 1),  # A
        ({"time_to_first_token": 39}, 1),  # A; B's TTFT is 40 ...
        ({"time_to_first_token_from_intended": 39}, 2),  # ... but B went out 1 ms early: 39 from intended
        ({"output_token_throughput_per_user": 100}, 2),  # a floor: A and B have exactly 100 tok/s
        ({"output_token_throughput_per_user": 100.5}, 0),
        ({"time_to_first_token": 50, "request_latency": 40}, 1),  # A; B too slow overall; C no TTFT
        ({"request_latency": 1000}, 3),  # every success, never the error or the lost request
    ],
)
def test_a_request_is_good_when_it_meets_every_slo(slos: dict[str, float], good: int) -> None:
    run = goodput_of(slos)
    assert run.benchmark_duration_s == pytest.approx(0.303)
    assert run.goodput == pytest.approx(good / 0.303)
    assert run.good_request_fraction == pytest.approx(good / 5)
    assert run.goodput_slos == slos


def test_a_non_streaming_request_is_not_good_under_a_ttft_slo() -> None:
    run = compute_metrics([records()[2]], goodput={"time_to_first_token": 1_000_000})
    assert run.success_count == 1
    assert (run.goodput, run.good_request_fraction) == (0.0, 0.0)
    assert compute_metrics([records()[2]], goodput={"request_latency": 1_000_000}).good_request_fraction == 1.0


def test_no_spec_means_no_goodput_figures() -> None:
    for slos in (None, {}):
        run = compute_metrics(records(), goodput=slos)
        assert (run.goodput, run.good_request_fraction, run.goodput_slos) == (None, None, None)


def test_goodput_without_a_duration_or_requests_is_none() -> None:
    run = compute_metrics([], goodput={"request_latency": 10})
    assert (run.goodput, run.good_request_fraction) == (None, None)
    assert run.goodput_slos == {"request_latency": 10}


def test_compute_metrics_rejects_an_unknown_slo_from_config() -> None:
    with pytest.raises(UsageError, match="unknown metric 'ttft'"):
        compute_metrics(records(), goodput={"ttft": 10})
    with pytest.raises(UsageError, match="needs a value > 0"):
        compute_metrics(records(), goodput={"request_latency": 0})
