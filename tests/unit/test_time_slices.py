"""Results per time window, from fixed records."""

from __future__ import annotations

from typing import Any

import pytest

from aiperf_hpc.core.time_slices import SLICE_FIELDS, compute_time_slices
from aiperf_hpc.results.time_slices import time_slices_csv_text

S = 1_000_000_000  # one second in ns
MS = 1_000_000


def record(start_ns: int, latency_ms: int, *, error: str | None = None, tokens: int = 10) -> dict[str, Any]:
    return {
        "phase": "profiling",
        "started_wall_ns": start_ns,
        "latency_ns": latency_ms * MS,
        "response_times_ns": [latency_ms * MS // 2],
        "output_tokens": tokens,
        "input_tokens": 5,
        "error_type": error,
        "status_code": 500 if error == "http_error" else 200,
    }


def test_records_fall_in_the_window_of_their_start_and_rates_use_the_window_length() -> None:
    origin = 10 * S
    records = [
        record(origin, 100),
        record(origin + 400 * MS, 300),
        record(origin + 1200 * MS, 200, error="http_error"),
        record(origin + 1500 * MS, 500, tokens=30),  # ends at 2.0 s: the run's end
        {"phase": "warmup", "started_wall_ns": 0, "latency_ns": 1},
    ]

    first, second = compute_time_slices(records, 1.0)

    assert set(first) == set(SLICE_FIELDS)
    assert (first["start_s"], first["end_s"], first["duration_s"]) == (0.0, 1.0, 1.0)
    assert (first["request_count"], first["success_count"], first["error_count"]) == (2, 2, 0)
    assert first["request_throughput"] == 2.0 and first["output_token_throughput"] == 20.0
    assert first["request_latency_p50"] == pytest.approx(200.0)
    assert first["time_to_first_token_p50"] == pytest.approx(100.0)
    assert (second["request_count"], second["success_count"], second["error_count"]) == (2, 1, 1)
    assert second["output_token_throughput"] == 30.0
    assert second["request_latency_p99"] == pytest.approx(500.0)  # successes only


def test_the_last_window_is_cut_at_the_runs_end_and_empty_windows_are_kept() -> None:
    records = [record(0, 100), record(2500 * MS, 500)]  # the run ends at 3.0 s

    slices = compute_time_slices(records, 2.0)

    assert [(w["start_s"], w["duration_s"], w["request_count"]) for w in slices] == [(0.0, 2.0, 1), (2.0, 1.0, 1)]
    assert slices[1]["request_throughput"] == 1.0

    windows = compute_time_slices(records, 1.0)
    assert [w["request_count"] for w in windows] == [1, 0, 1]
    assert windows[1]["request_throughput"] == 0.0 and windows[1]["request_latency_p50"] is None


def test_every_profiling_record_is_in_one_window() -> None:
    records = [record(k * 137 * MS, 50 + k) for k in range(40)]
    records.append({"phase": "profiling", "started_wall_ns": 3 * S, "error_type": "lost", "worker_id": "w"})

    slices = compute_time_slices(records, 0.7)

    assert sum(w["request_count"] for w in slices) == 41
    assert compute_time_slices([], 1.0) == []
    with pytest.raises(ValueError):
        compute_time_slices(records, 0.0)


def test_csv_has_a_header_and_a_row_per_window_with_empty_cells_for_missing_values() -> None:
    slices = compute_time_slices([record(0, 100), record(2500 * MS, 500)], 1.0)

    lines = time_slices_csv_text(slices).splitlines()

    assert lines[0].split(",") == list(SLICE_FIELDS)
    assert len(lines) == 4
    assert lines[2].startswith("1,1.0,2.0,1.0,0,0,0,0.0,0.0,,")
