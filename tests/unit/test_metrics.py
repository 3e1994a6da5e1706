"""compute_metrics on hand-made records whose every figure is computed by hand below.

Goodput has its own file, test_goodput.py."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from aiperf_hpc.core import record_columns as record_columns_module
from aiperf_hpc.core.metrics import (
    METRIC_UNITS,
    RunMetrics,
    compute_metrics,
    compute_metrics_from_models,
)
from aiperf_hpc.core.node_metrics import group_percentiles
from aiperf_hpc.core.record_columns import error_key
from aiperf_hpc.protocol.messages import RequestRecord

MS = 1_000_000
BASE_WALL_NS = 1_700_000_000_000_000_000


def record(**fields: Any) -> RequestRecord:
    defaults: dict[str, Any] = {
        "credit_id": 0,
        "phase": "profiling",
        "worker_id": "w0",
        "node": "n0",
        "conversation_index": 0,
        "started_wall_ns": BASE_WALL_NS,
    }
    return RequestRecord(**(defaults | fields))


def dumped(records: list[RequestRecord]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in records]


def streaming_run() -> list[RequestRecord]:
    """Three streaming successes, five failures of every kind, and one warmup record.

    A: start +0,  latency 30 ms, times [10, 15, 25] ms, 100 in / 5 out  -> TTFT 10, TTST 5, ITL 20/4 = 5
    B: start +10, latency 40 ms, times [20, 22, 30, 34] ms, 200 in / 4 out -> TTFT 20, TTST 2, ITL 20/3
    C: start +20, latency 50 ms, times [30] ms, 300 in / 1 out          -> TTFT 30, no TTST, no ITL
    The last end is an http_error at +5 ms lasting 100 ms: duration 105 ms.
    """
    return [
        record(
            credit_id=1,
            latency_ns=30 * MS,
            response_times_ns=[10 * MS, 15 * MS, 25 * MS],
            input_tokens=100,
            output_tokens=5,
        ),
        record(
            credit_id=2,
            started_wall_ns=BASE_WALL_NS + 10 * MS,
            latency_ns=40 * MS,
            response_times_ns=[20 * MS, 22 * MS, 30 * MS, 34 * MS],
            input_tokens=200,
            output_tokens=4,
        ),
        record(
            credit_id=3,
            started_wall_ns=BASE_WALL_NS + 20 * MS,
            latency_ns=50 * MS,
            response_times_ns=[30 * MS],
            input_tokens=300,
            output_tokens=1,
        ),
        record(
            credit_id=4,
            started_wall_ns=BASE_WALL_NS + 5 * MS,
            latency_ns=100 * MS,
            status_code=500,
            error_type="http_error",
            error_message="Internal Server Error",
        ),
        record(credit_id=5, latency_ns=1 * MS, status_code=500, error_type="http_error"),
        record(credit_id=6, error_type="timeout", error_message="timed out after 600 s"),
        record(credit_id=7, error_type="cancelled", error_message="grace period over"),
        record(credit_id=8, error_type="lost", error_message="worker w1 lost"),
        # Warmup: would stretch the duration to seconds and add a TTFT of 1 s if counted.
        record(
            credit_id=9,
            phase="warmup",
            started_wall_ns=BASE_WALL_NS - 1_000 * MS,
            latency_ns=5_000 * MS,
            response_times_ns=[1_000 * MS, 2_000 * MS],
            input_tokens=7,
            output_tokens=2,
        ),
        record(credit_id=10, phase="warmup", error_type="timeout"),
    ]


@pytest.fixture
def run() -> RunMetrics:
    return compute_metrics(dumped(streaming_run()))


def test_time_to_first_token_is_the_first_response_time(run: RunMetrics) -> None:
    ttft = run.metrics["time_to_first_token"]
    assert ttft.unit == "ms"
    assert (ttft.count, ttft.avg, ttft.min, ttft.max, ttft.p50) == (3, 20.0, 10.0, 30.0, 20.0)
    assert ttft.p25 == pytest.approx(15.0)
    assert ttft.p99 == pytest.approx(29.8)
    assert ttft.std == pytest.approx(math.sqrt(200 / 3))


def test_time_to_second_token_only_counts_records_with_two_responses(run: RunMetrics) -> None:
    ttst = run.metrics["time_to_second_token"]
    assert (ttst.count, ttst.min, ttst.max) == (2, 2.0, 5.0)
    assert ttst.avg == pytest.approx(3.5)


def test_inter_token_latency_per_request(run: RunMetrics) -> None:
    itl = run.metrics["inter_token_latency"]
    assert itl.count == 2
    assert itl.min == pytest.approx(5.0)
    assert itl.max == pytest.approx(20 / 3)
    assert itl.avg == pytest.approx((5.0 + 20 / 3) / 2)


def test_output_token_throughput_per_user_inverts_the_inter_token_latency(run: RunMetrics) -> None:
    per_user = run.metrics["output_token_throughput_per_user"]
    assert per_user.unit == "tokens/s"
    assert per_user.count == 2
    assert per_user.min == pytest.approx(150.0)
    assert per_user.max == pytest.approx(200.0)


def test_inter_chunk_latency_flattens_gaps_within_each_record(run: RunMetrics) -> None:
    # A: 5, 10; B: 2, 8, 4; C: none. No gap across records (B's 20 ms after A's 25 ms would be -5).
    icl = run.metrics["inter_chunk_latency"]
    assert (icl.count, icl.min, icl.max, icl.p50) == (5, 2.0, 10.0, 5.0)
    assert icl.avg == pytest.approx(5.8)


def test_latency_and_sequence_lengths(run: RunMetrics) -> None:
    latency = run.metrics["request_latency"]
    assert (latency.count, latency.avg, latency.min, latency.max) == (3, 40.0, 30.0, 50.0)
    isl = run.metrics["input_sequence_length"]
    assert (isl.unit, isl.count, isl.avg, isl.p50) == ("tokens", 3, 200.0, 200.0)
    osl = run.metrics["output_sequence_length"]
    assert (osl.count, osl.min, osl.max) == (3, 1.0, 5.0)
    assert osl.avg == pytest.approx(10 / 3)


def test_run_level_counts_exclude_warmup_and_separate_cancelled_and_lost(run: RunMetrics) -> None:
    assert run.request_count == 8
    assert run.success_count == 3
    assert run.error_count == 3
    assert run.cancelled_count == 1
    assert run.lost_count == 1


def test_throughputs_divide_by_the_span_from_first_start_to_last_end(run: RunMetrics) -> None:
    assert run.benchmark_duration_s == pytest.approx(0.105)
    assert run.request_throughput == pytest.approx(3 / 0.105)
    assert run.output_token_throughput == pytest.approx(10 / 0.105)
    assert run.total_token_throughput == pytest.approx(610 / 0.105)


def test_errors_by_type_keys_http_errors_by_status_and_keeps_a_sample_message(run: RunMetrics) -> None:
    assert list(run.errors_by_type) == ["http_error:500", "timeout"]
    assert run.errors_by_type["http_error:500"].count == 2
    assert run.errors_by_type["http_error:500"].sample_message == "Internal Server Error"
    assert run.errors_by_type["timeout"].count == 1
    assert run.errors_by_type["timeout"].sample_message == "timed out after 600 s"


def test_error_key() -> None:
    assert error_key("http_error", 503) == "http_error:503"
    assert error_key("http_error", None) == "http_error"
    assert error_key("timeout", None) == "timeout"


def test_non_streaming_run_omits_streaming_metrics() -> None:
    records = [record(credit_id=i, latency_ns=(i + 1) * 10 * MS, input_tokens=10, output_tokens=20) for i in range(3)]
    run = compute_metrics(dumped(records))
    assert set(run.metrics) == {"request_latency", "input_sequence_length", "output_sequence_length"}
    assert run.metrics["request_latency"].avg == 20.0


def test_records_without_response_times_between_streaming_ones_leave_gaps_intact() -> None:
    records = [
        record(credit_id=1, latency_ns=9 * MS, response_times_ns=[1 * MS, 3 * MS]),
        record(credit_id=2, latency_ns=9 * MS),
        record(credit_id=3, latency_ns=9 * MS, response_times_ns=[2 * MS, 7 * MS]),
        record(credit_id=4, latency_ns=9 * MS),
    ]
    run = compute_metrics(dumped(records))
    icl = run.metrics["inter_chunk_latency"]
    assert (icl.count, icl.min, icl.max) == (2, 2.0, 5.0)
    assert run.metrics["time_to_first_token"].count == 2


def test_no_profiling_records_gives_no_metrics_and_no_throughput() -> None:
    for records in ([], [record(phase="warmup", latency_ns=MS, response_times_ns=[MS])]):
        run = compute_metrics(dumped(records))
        assert run.metrics == {}
        assert run.request_count == 0
        assert run.benchmark_duration_s is None
        assert run.request_throughput is None
        assert run.errors_by_type == {}


def test_only_failures_still_have_a_duration_but_no_per_request_metrics() -> None:
    records = [record(latency_ns=50 * MS, status_code=502, error_type="http_error")]
    run = compute_metrics(dumped(records))
    assert run.metrics == {}
    assert run.benchmark_duration_s == pytest.approx(0.05)
    assert run.request_throughput == 0.0
    assert run.errors_by_type["http_error:502"].sample_message is None


def test_models_and_dicts_give_the_same_metrics() -> None:
    records = streaming_run()
    assert compute_metrics_from_models(records) == compute_metrics(dumped(records))


def test_metrics_come_in_display_order(run: RunMetrics) -> None:
    assert list(run.metrics) == [name for name in METRIC_UNITS if name in run.metrics]
    assert list(run.metrics)[:2] == ["request_latency", "time_to_first_token"]
    assert run.model_dump(mode="json")["metrics"]["request_latency"]["p99"] == pytest.approx(49.8)


def test_closed_loop_run_has_no_scheduled_metrics_but_an_achieved_rate(run: RunMetrics) -> None:
    assert not {"send_lag", "request_latency_from_intended", "time_to_first_token_from_intended"} & set(run.metrics)
    assert run.scheduled_request_rate is None
    # Sent (all but the lost one): starts at 0, 10, 20, 5, 0, 0, 0 ms: 6 intervals over 20 ms.
    assert run.achieved_request_rate == pytest.approx(300.0)
    assert (run.goodput, run.good_request_fraction, run.goodput_slos) == (None, None, None)
    assert run.output_tokens_source == {}


def scheduled_run() -> list[RequestRecord]:
    """A rate-mode run: every record has an intended send time (`scheduled_wall_ns`).

    A: sched +0,   start +2   (lag  2), latency 30, times [10, 20], usage     -> from intended: 32, TTFT 12
    B: sched +100, start +99  (lag -1), latency 50, times [40, 45], tokenizer -> from intended: 49, TTFT 39
    C: sched +200, start +210 (lag 10), latency 20, not streaming,  usage     -> from intended: 30
    D: sched +300, start +304 (lag  4), http_error after 1 ms
    E: sched +400, start +403 (lag  3), cancelled
    F: sched +500, lost (its start is when the loss was noticed: no lag, not sent)
    """
    return [
        record(
            credit_id=1,
            scheduled_wall_ns=BASE_WALL_NS,
            started_wall_ns=BASE_WALL_NS + 2 * MS,
            latency_ns=30 * MS,
            response_times_ns=[10 * MS, 20 * MS],
            output_tokens=3,
            output_tokens_source="usage",
        ),
        record(
            credit_id=2,
            scheduled_wall_ns=BASE_WALL_NS + 100 * MS,
            started_wall_ns=BASE_WALL_NS + 99 * MS,
            latency_ns=50 * MS,
            response_times_ns=[40 * MS, 45 * MS],
            output_tokens=2,
            output_tokens_source="tokenizer",
        ),
        record(
            credit_id=3,
            scheduled_wall_ns=BASE_WALL_NS + 200 * MS,
            started_wall_ns=BASE_WALL_NS + 210 * MS,
            latency_ns=20 * MS,
            output_tokens=5,
            output_tokens_source="usage",
        ),
        record(
            credit_id=4,
            scheduled_wall_ns=BASE_WALL_NS + 300 * MS,
            started_wall_ns=BASE_WALL_NS + 304 * MS,
            latency_ns=1 * MS,
            status_code=500,
            error_type="http_error",
        ),
        record(
            credit_id=5,
            scheduled_wall_ns=BASE_WALL_NS + 400 * MS,
            started_wall_ns=BASE_WALL_NS + 403 * MS,
            error_type="cancelled",
        ),
        record(
            credit_id=6,
            scheduled_wall_ns=BASE_WALL_NS + 500 * MS,
            started_wall_ns=BASE_WALL_NS + 900 * MS,
            error_type="lost",
        ),
        record(
            credit_id=7,
            phase="warmup",
            scheduled_wall_ns=BASE_WALL_NS - 5_000 * MS,
            started_wall_ns=BASE_WALL_NS - 1_000 * MS,
            latency_ns=MS,
        ),
    ]


@pytest.fixture
def scheduled() -> RunMetrics:
    return compute_metrics(dumped(scheduled_run()))


def test_send_lag_covers_every_sent_record_and_keeps_negative_lags(scheduled: RunMetrics) -> None:
    lag = scheduled.metrics["send_lag"]
    assert lag.unit == "ms"
    assert (lag.count, lag.min, lag.max, lag.p50) == (5, -1.0, 10.0, 3.0)
    assert lag.avg == pytest.approx(18 / 5)


def test_latencies_from_the_intended_send_time_add_the_send_lag(scheduled: RunMetrics) -> None:
    latency = scheduled.metrics["request_latency_from_intended"]
    assert (latency.count, latency.min, latency.max, latency.p50) == (3, 30.0, 49.0, 32.0)
    assert latency.avg == pytest.approx(37.0)
    ttft = scheduled.metrics["time_to_first_token_from_intended"]
    assert (ttft.count, ttft.min, ttft.max) == (2, 12.0, 39.0)
    # The uncorrected figures are unchanged.
    assert scheduled.metrics["request_latency"].avg == pytest.approx(100 / 3)
    assert scheduled.metrics["time_to_first_token"].avg == pytest.approx(25.0)


def test_achieved_and_scheduled_rates_count_intervals_over_the_span(scheduled: RunMetrics) -> None:
    # Sent at 2, 99, 210, 304, 403 ms (not the lost one): 4 intervals in 401 ms.
    assert scheduled.achieved_request_rate == pytest.approx(4 / 0.401)
    # Scheduled at 0, 100, ..., 500 ms, the lost one included: 5 intervals in 500 ms.
    assert scheduled.scheduled_request_rate == pytest.approx(10.0)
    assert scheduled.request_count == 6
    assert scheduled.benchmark_duration_s == pytest.approx(0.303)


def test_a_partly_scheduled_run_has_lag_only_for_the_scheduled_records() -> None:
    records = [
        record(credit_id=1, latency_ns=10 * MS),
        record(credit_id=2, scheduled_wall_ns=BASE_WALL_NS - 3 * MS, latency_ns=10 * MS),
    ]
    run = compute_metrics(dumped(records))
    assert run.metrics["send_lag"].count == 1
    assert run.metrics["request_latency_from_intended"].max == 13.0
    assert run.metrics["request_latency_from_intended"].count == 1
    assert run.scheduled_request_rate is None  # one scheduled time is no rate
    assert run.achieved_request_rate is None  # two starts, but at the same instant


def test_rates_need_two_records() -> None:
    run = compute_metrics(dumped([record(scheduled_wall_ns=BASE_WALL_NS, latency_ns=MS)]))
    assert (run.achieved_request_rate, run.scheduled_request_rate) == (None, None)
    assert run.metrics["send_lag"].avg == 0.0


def test_output_tokens_source_counts_successes_per_source(scheduled: RunMetrics) -> None:
    assert scheduled.output_tokens_source == {"usage": 2, "tokenizer": 1}
    assert list(scheduled.output_tokens_source) == ["usage", "tokenizer"]


def test_output_tokens_source_ignores_failures_and_records_without_a_source() -> None:
    records = [
        record(credit_id=1, latency_ns=MS, output_tokens=4, output_tokens_source="chunks"),
        record(credit_id=2, latency_ns=MS),
        record(credit_id=3, latency_ns=MS, error_type="timeout", output_tokens_source="usage"),
    ]
    assert compute_metrics(dumped(records)).output_tokens_source == {"chunks": 1}


def test_new_figures_survive_a_json_round_trip(scheduled: RunMetrics) -> None:
    assert RunMetrics.model_validate(scheduled.model_dump(mode="json")) == scheduled


def three_node_run() -> list[dict[str, Any]]:
    """Nodes a, b (scheduled) and c (not), plus a lost record of a worker nobody saw.

    a: 1 w-a0 sched -1, start 0,  latency 20, 10 out, bound 0.2 ms -> lag 1
       2 w-a1 sched 10, start 13, latency 40, 20 out, bound 0.5 ms -> lag 3
       3 w-a0 sched 20, start 20, http_error after 80 ms            -> lag 0, ends at 100
       4 w-a1 lost (node ""), sched 30                              -> under a, by its worker
    b: 5 w-b0 sched 40, start 45, latency 30, 5 out, bound 1.5 ms   -> lag 5
       6 w-b0 sched 50, start 52, cancelled                         -> lag 2
    c: 7 w-c0 start 60, latency 40, 8 out                           -> ends at 100
       8 w-c0 start 70, timeout
    unknown: 9 w-x9 lost (node ""), sched 90: its worker has no other record
    10: warmup on node d with a 9 ms bound: counts nowhere. Duration: 0 -> 100 ms.
    """

    def at(node: str, worker_id: str, start_ms: int, sched_ms: int | None, **fields: Any) -> RequestRecord:
        return record(
            node=node,
            worker_id=worker_id,
            started_wall_ns=BASE_WALL_NS + start_ms * MS,
            scheduled_wall_ns=None if sched_ms is None else BASE_WALL_NS + sched_ms * MS,
            **fields,
        )

    records = [
        at("a", "w-a0", 0, -1, credit_id=1, latency_ns=20 * MS, output_tokens=10),
        at("a", "w-a1", 13, 10, credit_id=2, latency_ns=40 * MS, output_tokens=20),
        at("a", "w-a0", 20, 20, credit_id=3, latency_ns=80 * MS, status_code=500, error_type="http_error"),
        at("", "w-a1", 500, 30, credit_id=4, error_type="lost"),
        at("b", "w-b0", 45, 40, credit_id=5, latency_ns=30 * MS, output_tokens=5),
        at("b", "w-b0", 52, 50, credit_id=6, error_type="cancelled"),
        at("c", "w-c0", 60, None, credit_id=7, latency_ns=40 * MS, output_tokens=8),
        at("c", "w-c0", 70, None, credit_id=8, error_type="timeout"),
        at("", "w-x9", 600, 90, credit_id=9, error_type="lost"),
        at("d", "w-d0", 0, None, credit_id=10, phase="warmup", latency_ns=MS, output_tokens=1),
    ]
    # Bounds are set as keys after dumping, and c's records lack the key, as records written
    # before clock offsets were measured do; the other records have it as null.
    bounds_ns = {1: 200_000, 2: 500_000, 5: 1_500_000, 10: 9_000_000}
    dumps = []
    for r in records:
        dump = r.model_dump(mode="json") | {"clock_offset_bound_ns": bounds_ns.get(r.credit_id)}
        if r.node == "c":
            del dump["clock_offset_bound_ns"]
        dumps.append(dump)
    return dumps


@pytest.fixture
def by_node() -> RunMetrics:
    return compute_metrics(three_node_run())


def test_by_node_counts_each_nodes_outcomes_and_workers(by_node: RunMetrics) -> None:
    assert list(by_node.by_node) == ["a", "b", "c", "unknown"]
    counts = {
        node: (m.workers, m.request_count, m.success_count, m.error_count, m.cancelled_count, m.lost_count)
        for node, m in by_node.by_node.items()
    }
    assert counts == {
        "a": (2, 4, 2, 1, 0, 1),  # the lost record is a's, through its worker w-a1
        "b": (1, 2, 1, 0, 1, 0),
        "c": (1, 2, 1, 1, 0, 0),
        "unknown": (1, 1, 0, 0, 0, 1),
    }
    # The nodes' counts add up to the run's.
    assert sum(m.request_count for m in by_node.by_node.values()) == by_node.request_count == 9
    assert sum(m.error_count for m in by_node.by_node.values()) == by_node.error_count == 2
    assert sum(m.lost_count for m in by_node.by_node.values()) == by_node.lost_count == 2


def test_node_throughputs_divide_by_the_runs_duration_and_add_up(by_node: RunMetrics) -> None:
    assert by_node.benchmark_duration_s == pytest.approx(0.1)
    throughputs = {node: m.request_throughput for node, m in by_node.by_node.items()}
    assert throughputs == pytest.approx({"a": 20.0, "b": 10.0, "c": 10.0, "unknown": 0.0})
    assert sum(v or 0.0 for v in throughputs.values()) == pytest.approx(by_node.request_throughput)
    tokens = {node: m.output_token_throughput for node, m in by_node.by_node.items()}
    assert tokens == pytest.approx({"a": 300.0, "b": 50.0, "c": 80.0, "unknown": 0.0})
    assert sum(v or 0.0 for v in tokens.values()) == pytest.approx(by_node.output_token_throughput)


def test_node_send_lag_and_latency_percentiles(by_node: RunMetrics) -> None:
    a, b, c, unknown = (by_node.by_node[node] for node in ("a", "b", "c", "unknown"))
    # a: lags 1, 3, 0 (the lost one has none); latencies 20, 40.
    assert (a.send_lag_p50_ms, a.request_latency_p50_ms) == (1.0, 30.0)
    assert (a.send_lag_p99_ms, a.request_latency_p99_ms) == pytest.approx((2.96, 39.8))
    # b: lags 5, 2 (the cancelled one was sent); latency 30.
    assert b.send_lag_p50_ms == 3.5
    assert b.send_lag_p99_ms == pytest.approx(4.97)
    assert (b.request_latency_p50_ms, b.request_latency_p99_ms) == (30.0, 30.0)
    # c has no schedule; unknown has neither a sent record nor a success.
    assert (c.send_lag_p50_ms, c.send_lag_p99_ms) == (None, None)
    assert (c.request_latency_p50_ms, c.request_latency_p99_ms) == (40.0, 40.0)
    assert (unknown.send_lag_p50_ms, unknown.request_latency_p99_ms) == (None, None)


def test_node_percentiles_agree_with_the_runs_for_one_node() -> None:
    records = dumped(scheduled_run())
    run = compute_metrics(records)
    assert list(run.by_node) == ["n0"]
    node = run.by_node["n0"]
    assert node.send_lag_p50_ms == run.metrics["send_lag"].p50
    assert node.send_lag_p99_ms == run.metrics["send_lag"].p99
    assert node.request_latency_p99_ms == run.metrics["request_latency"].p99
    assert (node.request_count, node.success_count, node.workers) == (6, 3, 1)
    assert (run.nodes, node.request_throughput) == (1, run.request_throughput)


def test_clock_offset_bound_is_the_largest_of_the_profiling_records(by_node: RunMetrics) -> None:
    assert by_node.clock_offset_bound_ms == 1.5  # not the warmup record's 9 ms
    bounds = {node: m.clock_offset_bound_ms for node, m in by_node.by_node.items()}
    assert bounds == {"a": 0.5, "b": 1.5, "c": None, "unknown": None}


def test_nodes_counts_the_nodes_records_name(by_node: RunMetrics) -> None:
    # a, b and c: neither the made-up "unknown" nor the warmup-only d.
    assert by_node.nodes == 3


def test_a_run_without_records_or_bounds_has_no_nodes() -> None:
    run = compute_metrics([])
    assert (run.by_node, run.nodes, run.clock_offset_bound_ms) == ({}, 0, None)
    assert compute_metrics(dumped(streaming_run())).clock_offset_bound_ms is None


def test_by_node_survives_a_json_round_trip(by_node: RunMetrics) -> None:
    assert RunMetrics.model_validate(by_node.model_dump(mode="json")) == by_node


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_percentiles_match_numpy_per_group(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_groups = 5
    group = rng.integers(0, n_groups - 1, size=200)  # the last group stays empty
    values = rng.normal(size=200).round(2)  # ties included
    values[rng.random(200) < 0.1] = np.nan
    percents = (0, 1, 25, 50, 90, 99, 100)
    got = group_percentiles(group, values, n_groups, percents)
    for g in range(n_groups - 1):
        in_group = values[(group == g) & ~np.isnan(values)]
        assert got[g].tolist() == np.percentile(in_group, percents).tolist()
    assert np.isnan(got[n_groups - 1]).all()


def mixed_run(seed: int, count: int) -> list[dict[str, Any]]:
    """Random records of every outcome and shape: warmup, missing values and keys, lost records
    without a node, partly scheduled, successes with 0 to 6 response times."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        fields: dict[str, Any] = {
            "credit_id": i,
            "phase": "warmup" if i < 3 else "profiling",
            "worker_id": f"w{i % 3}",
            "node": f"n{i % 2}",
            "started_wall_ns": BASE_WALL_NS + i * MS + int(rng.integers(MS)),
            "scheduled_wall_ns": BASE_WALL_NS + i * MS if i % 2 else None,
            "clock_offset_bound_ns": None if i % 4 else int(rng.integers(MS)),
        }
        kind = rng.random()
        if kind < 0.1:
            status, message = [(500, None), (503, "x")][i % 2]
            fields |= {"error_type": "http_error", "status_code": status, "error_message": message}
        elif kind < 0.15:
            fields |= {"error_type": "cancelled", "latency_ns": [None, MS][i % 2]}
        elif kind < 0.2:
            fields |= {"error_type": "lost", "node": ""}
        else:
            times = sorted(int(t) for t in rng.integers(1, 100 * MS, size=int(rng.integers(0, 7))))
            fields |= {
                "latency_ns": (times[-1] if times else MS) + int(rng.integers(MS)),
                "response_times_ns": times,
                "input_tokens": [None, 10, 20][i % 3],
                "output_tokens": [None, 1, len(times) + 1][i % 3],
                "output_tokens_source": [None, "usage", "tokenizer"][i % 3],
            }
        dump = record(**fields).model_dump(mode="json")
        if i % 7 == 0:
            del dump["clock_offset_bound_ns"]  # as in files written before the bound existed
        records.append(dump)
    return records


@pytest.mark.parametrize("seed", [0, 1])
def test_inter_chunk_latency_and_ttft_match_a_record_by_record_computation(seed: int) -> None:
    records = mixed_run(seed, 300)
    successes = [r for r in records if r["phase"] == "profiling" and r["error_type"] is None]
    gaps_ms = [(b - a) / MS for r in successes for a, b in itertools.pairwise(r["response_times_ns"])]
    ttft_ms = [r["response_times_ns"][0] / MS for r in successes if r["response_times_ns"]]
    run = compute_metrics(records)
    for name, values in (("inter_chunk_latency", gaps_ms), ("time_to_first_token", ttft_ms)):
        stats = run.metrics[name]
        expected = np.percentile(values, [1, 50, 99]).tolist()
        assert (stats.count, stats.min, stats.max) == (len(values), min(values), max(values))
        assert [stats.p1, stats.p50, stats.p99] == expected
        assert stats.avg == pytest.approx(np.mean(values))


def test_chunks_give_the_same_metrics_as_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    records = mixed_run(2, 200)
    whole = compute_metrics(records)
    monkeypatch.setattr(record_columns_module, "CHUNK_RECORDS", 7)  # labels first seen in later chunks too
    assert compute_metrics(records) == whole
    assert compute_metrics(iter(records)) == whole


def test_a_record_without_phase_or_start_is_refused() -> None:
    good = record(latency_ns=MS).model_dump(mode="json")
    with pytest.raises(KeyError, match="phase"):
        compute_metrics([good, {k: v for k, v in good.items() if k != "phase"}])
    with pytest.raises(KeyError, match="started_wall_ns"):
        compute_metrics([good, good | {"started_wall_ns": None}])
    lost = good | {"started_wall_ns": None, "error_type": "lost"}  # a lost record needs no start
    assert compute_metrics([good, lost]).lost_count == 1
