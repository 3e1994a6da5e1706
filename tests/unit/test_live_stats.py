"""LiveAggregator on hand-made records whose every figure is worked out by hand below."""

from __future__ import annotations

from typing import Any

import pytest

from aiperf_hpc.core.live_stats import FLUSH_EVERY, ITL_BOUNDS_S, LATENCY_BOUNDS_S, TTFT_BOUNDS_S, LiveAggregator
from aiperf_hpc.protocol.codec import decode, encode
from aiperf_hpc.protocol.messages import RecordsProgress, RequestRecord

MS = 1_000_000
S = 1_000_000_000


def record(credit_id: int, **fields: Any) -> RequestRecord:
    defaults: dict[str, Any] = {
        "credit_id": credit_id,
        "phase": "profiling",
        "worker_id": "w0",
        "node": "n0",
        "conversation_index": 0,
        "started_wall_ns": 0,
    }
    return RequestRecord(**(defaults | fields))


def success(credit_id: int, ttft_ms: int, latency_ms: int, output_tokens: int, **fields: Any) -> RequestRecord:
    return record(
        credit_id,
        latency_ns=latency_ms * MS,
        response_times_ns=[ttft_ms * MS, latency_ms * MS],
        output_tokens=output_tokens,
        input_tokens=100,
        **fields,
    )


def test_counts_by_node_and_error_type_leave_out_warmup_and_cancelled() -> None:
    live = LiveAggregator()
    live.add(
        [
            success(0, ttft_ms=10, latency_ms=50, output_tokens=5),
            success(1, ttft_ms=30, latency_ms=70, output_tokens=5, node="n1", worker_id="w1"),
            record(2, error_type="http_error", status_code=500),
            record(3, error_type="cancelled"),
            record(4, error_type="timeout", node="n1", worker_id="w1"),
            record(5, phase="warmup"),
            record(6, phase="warmup", error_type="timeout"),
        ],
        now_ns=0,
    )
    stats = live.snapshot(now_ns=0)
    assert stats.warmup_requests == 2
    assert stats.requests == 5
    assert stats.errors == 2
    assert stats.output_tokens == 10
    n0, n1 = stats.by_node["n0"], stats.by_node["n1"]
    assert (n0.requests, n0.errors, n0.output_tokens, n0.input_tokens) == (3, {"http_error": 1}, 5, 100)
    assert (n1.requests, n1.errors, n1.output_tokens, n1.input_tokens) == (2, {"timeout": 1}, 5, 100)


def test_a_lost_record_counts_under_its_workers_node() -> None:
    live = LiveAggregator()
    live.add([success(0, 10, 50, 5, node="n1", worker_id="w1")], now_ns=0)
    live.add([record(1, node="", worker_id="w1", error_type="lost")], now_ns=0)
    live.add([record(2, node="", worker_id="w9", error_type="lost")], now_ns=0)
    by_node = live.snapshot(now_ns=0).by_node
    assert by_node["n1"].errors == {"lost": 1}
    assert by_node["unknown"].errors == {"lost": 1}


def test_histograms_are_cumulative_with_le_buckets_and_exact_sums() -> None:
    live = LiveAggregator()
    # TTFT 10 and 30 ms; latency 50 and 70 ms; ITL (50-10)/4 = 10 ms and (70-30)/4 = 10 ms.
    live.add([success(0, 10, 50, 5), success(1, 30, 70, 5)], now_ns=0)
    node = live.snapshot(now_ns=0).by_node["n0"]
    ttft = node.time_to_first_token
    assert len(ttft.buckets) == len(TTFT_BOUNDS_S)
    assert ttft.count == 2 and ttft.sum_s == pytest.approx(0.040)
    # 0.01 s lands in the le="0.01" bucket itself (a bound is inclusive); 0.03 s in le="0.04".
    assert dict(zip(TTFT_BOUNDS_S, ttft.buckets, strict=True)) == {
        bound: (0 if bound < 0.01 else 1 if bound < 0.04 else 2) for bound in TTFT_BOUNDS_S
    }
    itl = node.inter_token_latency
    assert itl.count == 2 and itl.sum_s == pytest.approx(0.020)
    assert itl.buckets[ITL_BOUNDS_S.index(0.005)] == 0 and itl.buckets[ITL_BOUNDS_S.index(0.01)] == 2
    latency = node.request_latency
    assert latency.count == 2 and latency.sum_s == pytest.approx(0.120)
    assert latency.buckets[LATENCY_BOUNDS_S.index(0.05)] == 1 and latency.buckets[LATENCY_BOUNDS_S.index(0.1)] == 2


def test_values_above_every_bound_count_only_in_plus_inf() -> None:
    live = LiveAggregator()
    live.add([record(0, latency_ns=9000 * S)], now_ns=0)
    latency = live.snapshot(now_ns=0).by_node["n0"].request_latency
    assert latency.buckets[-1] == 0 and latency.count == 1


def test_rolling_percentiles_cover_only_the_last_successes() -> None:
    live = LiveAggregator(rolling_window=3)
    assert live.snapshot(now_ns=0).ttft_p50_ms is None
    # TTFTs 100, 1, 2, 3 ms, in two batches: the window keeps 1, 2, 3.
    live.add([success(0, 100, 200, 5)], now_ns=0)
    live.add([success(1, 1, 200, 5), success(2, 2, 200, 5), success(3, 3, 200, 5)], now_ns=0)
    stats = live.snapshot(now_ns=0)
    assert stats.ttft_p50_ms == pytest.approx(2.0)
    assert stats.ttft_p99_ms == pytest.approx(1 + 0.99 * 2)  # linear interpolation between 1 and 3
    assert stats.latency_p50_ms == pytest.approx(200.0)
    # One output token: a TTFT but no ITL, so the ITL window keeps its values.
    live.add([success(4, 5, 200, 1), success(5, 6, 200, 1), success(6, 7, 200, 1)], now_ns=0)
    later = live.snapshot(now_ns=0)
    assert later.ttft_p50_ms == pytest.approx(6.0)
    assert later.itl_p50_ms == stats.itl_p50_ms == pytest.approx((200 - 2) / 4)


def test_the_ring_wraps_around_its_end() -> None:
    live = LiveAggregator(rolling_window=4)
    for credit_id, ttft_ms in enumerate([1, 2, 3, 10, 20, 30]):  # one at a time: the write index wraps
        live.add([success(credit_id, ttft_ms, 100, 5)], now_ns=0)
    assert live.snapshot(now_ns=0).ttft_p50_ms == pytest.approx((10 + 20) / 2)  # of 3, 10, 20, 30


def test_values_folded_in_between_snapshots_are_counted_once() -> None:
    records = [success(i, ttft_ms=1 + i % 50, latency_ms=100, output_tokens=5) for i in range(FLUSH_EVERY + 10)]
    one_by_one, all_at_once = LiveAggregator(), LiveAggregator()
    for r in records:  # as workers send them: the pending values are folded in at FLUSH_EVERY
        one_by_one.add([r], now_ns=0)
    all_at_once.add(records, now_ns=0)
    first, second = one_by_one.snapshot(now_ns=0), all_at_once.snapshot(now_ns=0)
    assert first.by_node["n0"].time_to_first_token.count == FLUSH_EVERY + 10
    for field in ("time_to_first_token", "inter_token_latency", "request_latency"):
        one, other = getattr(first.by_node["n0"], field), getattr(second.by_node["n0"], field)
        assert (one.buckets, one.count) == (other.buckets, other.count)
        assert one.sum_s == pytest.approx(other.sum_s)  # summed in another order
    assert (first.ttft_p50_ms, first.ttft_p99_ms) == (second.ttft_p50_ms, second.ttft_p99_ms)


def test_rates_are_over_the_last_window_of_snapshots() -> None:
    live = LiveAggregator(rate_window_s=2.0)
    first = live.snapshot(now_ns=0)
    assert first.request_rate_per_s is None and first.profiling_for_s is None
    live.add([success(i, 10, 50, 4) for i in range(10)], now_ns=1 * S)
    second = live.snapshot(now_ns=1 * S)
    assert second.request_rate_per_s == pytest.approx(10.0)
    assert second.output_token_rate_per_s == pytest.approx(40.0)
    assert second.profiling_for_s == 0.0
    live.add([success(10 + i, 10, 50, 4) for i in range(4)], now_ns=2 * S)
    live.snapshot(now_ns=2 * S)
    live.add([success(20 + i, 10, 50, 4) for i in range(2)], now_ns=3 * S)
    third = live.snapshot(now_ns=3 * S)
    # The base is the newest snapshot at least 2 s old (t=1 s, 10 requests): (16 - 10) / 2 s.
    assert third.request_rate_per_s == pytest.approx(3.0)
    assert third.profiling_for_s == pytest.approx(2.0)


def test_the_figures_travel_inside_records_progress() -> None:
    live = LiveAggregator()
    live.add([success(0, 10, 50, 5), record(1, error_type="timeout")], now_ns=0)
    message = RecordsProgress(received=2, errors=1, expected=None, live=live.snapshot(now_ns=S))
    assert decode(encode(message)) == message
