"""Results per time window (`--slice-duration S`): how a run's throughput and latency moved over time.

Windows are `S` seconds long, back to back from the first profiling record's start; each profiling
record belongs to the window its request started in (`started_wall_ns`), so every profiling record
is in exactly one window and the windows' request counts add up to the run's. Each window's
figures are `core.metrics.compute_metrics` over its records, with the definitions of the whole
run's, except the rates: successes (and their output tokens) per second of the window's
`duration_s`, which is `S` but for the last window, cut where the run's last request ended.
Windows in which no request started are kept, with zero counts and no latencies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from aiperf_hpc.core.metrics import compute_metrics

_NS_PER_S = 1e9

_LATENCIES: tuple[str, ...] = ("time_to_first_token", "inter_token_latency", "request_latency")

SLICE_FIELDS: tuple[str, ...] = (
    "index",
    "start_s",
    "end_s",
    "duration_s",
    "request_count",
    "success_count",
    "error_count",
    "request_throughput",
    "output_token_throughput",
    *(f"{name}_{stat}" for name in _LATENCIES for stat in ("p50", "p99")),
)
"""The fields of a window, in export order; times in seconds since the first profiling record's
start, throughputs per second, latencies in ms (None where the window has no value)."""

TimeSlice = dict[str, int | float | None]


def compute_time_slices(records: Sequence[Mapping[str, Any]], slice_duration_s: float) -> list[TimeSlice]:
    """The windows of the profiling records (records shaped like `RequestRecord.model_dump`), in
    time order; an empty list when there is no profiling record. Raises ValueError unless
    `slice_duration_s` > 0."""
    if not slice_duration_s > 0:
        raise ValueError(f"slice duration must be > 0 s, got {slice_duration_s}")
    profiling = [r for r in records if r.get("phase") == "profiling" and isinstance(r.get("started_wall_ns"), int)]
    if not profiling:
        return []
    origin_ns = min(r["started_wall_ns"] for r in profiling)
    last_ns = max(r["started_wall_ns"] + _latency_ns(r) for r in profiling)
    width_ns = slice_duration_s * _NS_PER_S
    count = max(1, math.ceil((last_ns - origin_ns) / width_ns))
    windows: list[list[Mapping[str, Any]]] = [[] for _ in range(count)]
    for record in profiling:
        windows[min(count - 1, int((record["started_wall_ns"] - origin_ns) // width_ns))].append(record)
    run_s = (last_ns - origin_ns) / _NS_PER_S
    return [_window(index, members, slice_duration_s, run_s) for index, members in enumerate(windows)]


def _window(index: int, members: list[Mapping[str, Any]], width_s: float, run_s: float) -> TimeSlice:
    start_s = index * width_s
    duration_s = min(width_s, run_s - start_s)
    metrics = compute_metrics(members)
    output_tokens = sum(
        r["output_tokens"] for r in members if r.get("error_type") is None and isinstance(r.get("output_tokens"), int)
    )
    window: TimeSlice = {
        "index": index,
        "start_s": start_s,
        "end_s": start_s + duration_s,
        "duration_s": duration_s,
        "request_count": metrics.request_count,
        "success_count": metrics.success_count,
        "error_count": metrics.error_count,
        "request_throughput": metrics.success_count / duration_s if duration_s > 0 else None,
        "output_token_throughput": output_tokens / duration_s if duration_s > 0 else None,
    }
    for name in _LATENCIES:
        stats = metrics.metrics.get(name)
        window[f"{name}_p50"] = None if stats is None else stats.p50
        window[f"{name}_p99"] = None if stats is None else stats.p99
    return window


def _latency_ns(record: Mapping[str, Any]) -> int:
    latency = record.get("latency_ns")
    return latency if isinstance(latency, int) and record.get("error_type") != "lost" else 0
