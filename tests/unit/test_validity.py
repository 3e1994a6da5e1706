from __future__ import annotations

from aiperf_hpc.core.metrics import compute_metrics
from aiperf_hpc.core.validity import assess_validity


def record(credit_id: int, scheduled_ms: float, started_ms: float) -> dict[str, object]:
    return {
        "credit_id": credit_id,
        "phase": "profiling",
        "worker_id": "worker-0",
        "node": "n",
        "conversation_index": 0,
        "scheduled_wall_ns": int(scheduled_ms * 1e6),
        "started_wall_ns": int(started_ms * 1e6),
        "latency_ns": 1_000_000,
        "output_tokens": 1,
        "input_tokens": 1,
    }


def test_a_run_on_schedule_is_valid() -> None:
    metrics = compute_metrics([record(i, 10.0 * i, 10.0 * i + 0.1) for i in range(100)])
    assert assess_validity(metrics, max_loop_lag_ms=2.0, workers=2).valid


def test_late_requests_and_a_missed_rate_are_flagged_with_a_remedy() -> None:
    # Scheduled every 10 ms, sent every 20 ms: the lag grows to about a second and half the rate is lost.
    metrics = compute_metrics([record(i, 10.0 * i, 20.0 * i) for i in range(100)])
    validity = assess_validity(metrics, max_loop_lag_ms=None, workers=2)
    assert not validity.valid
    assert len(validity.warnings) == 2
    assert "send lag p99" in validity.warnings[0] and "--workers, now 2" in validity.warnings[0]
    assert "achieved 50.0 req/s of the 100.0 req/s scheduled" in validity.warnings[1]


def test_a_stalled_worker_loop_is_flagged() -> None:
    metrics = compute_metrics([record(i, 10.0 * i, 10.0 * i) for i in range(10)])
    validity = assess_validity(metrics, max_loop_lag_ms=120.0, workers=1)
    assert not validity.valid and "event loop lagged 120 ms" in validity.warnings[0]


def test_closed_loop_runs_have_no_schedule_to_miss() -> None:
    closed = [{**record(i, 0, 10.0 * i), "scheduled_wall_ns": None} for i in range(10)]
    assert assess_validity(compute_metrics(closed), max_loop_lag_ms=0.0, workers=1).valid
