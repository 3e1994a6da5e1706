"""The per-request values the report plots, taken from `records.jsonl` records.

Only profiling records count, as in `core.metrics`, and the per-request definitions are the same:
TTFT is the first response time, ITL is `(latency - TTFT) / (output_tokens - 1)` for streaming
successes with at least two output tokens, send lag is `started_wall_ns - scheduled_wall_ns` for
every sent record with a schedule. Times over the run are seconds since the first profiling
record's start; a request ends at `started_wall_ns + latency_ns`.

One pass in Python gathers lists, the rest is numpy, so a million records cost a few seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_NS_PER_MS = 1e6
_NS_PER_S = 1e9


@dataclass(frozen=True)
class RequestSeries:
    """Per-request values of one run's profiling records; each array has its own length.

    - `ttft_ms`, `itl_ms`, `latency_ms`: successes that have the value.
    - `success_end_s`, `success_output_tokens`: every success with a latency (tokens 0 when unknown).
    - `error_end_s`: every error (not cancelled, not lost) with a latency.
    - `start_s`, `end_s`: every record with a latency, aligned, for the requests in flight.
    - `send_lag_ms`, `send_lag_at_s`: sent records with a schedule, aligned (at = start time).
    """

    ttft_ms: FloatArray
    itl_ms: FloatArray
    latency_ms: FloatArray
    success_end_s: FloatArray
    success_output_tokens: FloatArray
    error_end_s: FloatArray
    start_s: FloatArray
    end_s: FloatArray
    send_lag_ms: FloatArray
    send_lag_at_s: FloatArray

    @property
    def duration_s(self) -> float:
        """From the first start to the last end (0.0 when no record has a latency)."""
        return float(self.end_s.max()) if self.end_s.size else 0.0


def request_series(records: Sequence[Mapping[str, Any]]) -> RequestSeries:
    """Gather the series of the profiling records (records shaped like `RequestRecord.model_dump`)."""
    profiling = [r for r in records if r.get("phase") == "profiling" and r.get("error_type") != "lost"]
    starts_ns = [r["started_wall_ns"] for r in profiling if isinstance(r.get("started_wall_ns"), int)]
    origin_ns = min(starts_ns) if starts_ns else 0
    ttft: list[float] = []
    itl: list[float] = []
    latency: list[float] = []
    success_end: list[float] = []
    success_tokens: list[float] = []
    error_end: list[float] = []
    start: list[float] = []
    end: list[float] = []
    lag: list[float] = []
    lag_at: list[float] = []
    for record in profiling:
        started_ns = record.get("started_wall_ns")
        if not isinstance(started_ns, int):
            continue
        start_s = (started_ns - origin_ns) / _NS_PER_S
        scheduled_ns = record.get("scheduled_wall_ns")
        if isinstance(scheduled_ns, int):
            lag.append((started_ns - scheduled_ns) / _NS_PER_MS)
            lag_at.append(start_s)
        latency_ns = record.get("latency_ns")
        error_type = record.get("error_type")
        if isinstance(latency_ns, int):
            end_s = start_s + latency_ns / _NS_PER_S
            start.append(start_s)
            end.append(end_s)
            if error_type not in (None, "cancelled"):
                error_end.append(end_s)
        if error_type is not None:
            continue
        output_tokens = record.get("output_tokens")
        response_times_ns = record.get("response_times_ns") or []
        if isinstance(latency_ns, int):
            latency.append(latency_ns / _NS_PER_MS)
            success_end.append(end_s)
            success_tokens.append(float(output_tokens) if isinstance(output_tokens, int) else 0.0)
        if response_times_ns:
            ttft_ns = response_times_ns[0]
            ttft.append(ttft_ns / _NS_PER_MS)
            if isinstance(output_tokens, int) and output_tokens >= 2 and isinstance(latency_ns, int):
                itl.append((latency_ns - ttft_ns) / (output_tokens - 1) / _NS_PER_MS)

    def array(values: list[float]) -> FloatArray:
        return np.asarray(values, dtype=np.float64)

    return RequestSeries(
        ttft_ms=array(ttft),
        itl_ms=array(itl),
        latency_ms=array(latency),
        success_end_s=array(success_end),
        success_output_tokens=array(success_tokens),
        error_end_s=array(error_end),
        start_s=array(start),
        end_s=array(end),
        send_lag_ms=array(lag),
        send_lag_at_s=array(lag_at),
    )


@dataclass(frozen=True)
class ServerSeries:
    """One scraped `/metrics` URL over the run (`server_metrics.jsonl`), aligned arrays: `at_s` is
    when each answered scrape was sent, in seconds since the first profiling record's start (as in
    `RequestSeries`; negative before it); a value the scrape lacked is NaN. `kv_cache_usage_pct`
    is in percent."""

    url: str
    at_s: FloatArray
    running: FloatArray
    waiting: FloatArray
    kv_cache_usage_pct: FloatArray


def server_series(lines: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]) -> list[ServerSeries]:
    """The answered scrapes of each URL, in order of the URL's first line."""
    starts_ns = [
        r["started_wall_ns"]
        for r in records
        if r.get("phase") == "profiling" and r.get("error_type") != "lost" and isinstance(r.get("started_wall_ns"), int)
    ]
    origin_ns = min(starts_ns) if starts_ns else 0
    by_url: dict[str, list[Mapping[str, Any]]] = {}
    for line in lines:
        if isinstance(line.get("values"), Mapping) and isinstance(line.get("started_wall_ns"), int):
            by_url.setdefault(str(line.get("url")), []).append(line)

    def column(scrapes: list[Mapping[str, Any]], key: str, scale: float = 1.0) -> FloatArray:
        return np.asarray([scale * s["values"].get(key, np.nan) for s in scrapes], dtype=np.float64)

    series = []
    for url, scrapes in by_url.items():
        scrapes.sort(key=lambda s: s["started_wall_ns"])
        series.append(
            ServerSeries(
                url=url,
                at_s=np.asarray([(s["started_wall_ns"] - origin_ns) / _NS_PER_S for s in scrapes], dtype=np.float64),
                running=column(scrapes, "vllm:num_requests_running"),
                waiting=column(scrapes, "vllm:num_requests_waiting"),
                kv_cache_usage_pct=column(scrapes, "vllm:kv_cache_usage_perc", 100.0),
            )
        )
    return series


def time_bins(duration_s: float) -> FloatArray:
    """Bin edges from 0 to `duration_s` for rates over time: between 10 and 120 bins of at least
    1 ms, about one per second for runs of a minute or two."""
    bins = int(min(120, max(10, round(duration_s))))
    width_s = max(duration_s / bins, 1e-3)
    return np.arange(bins + 1, dtype=np.float64) * width_s


def rate_per_s(event_s: FloatArray, edges_s: FloatArray, weights: FloatArray | None = None) -> FloatArray:
    """Events (or the sum of `weights`) per second in each bin of `edges_s`."""
    counts, _ = np.histogram(event_s, bins=edges_s, weights=weights)
    return counts / np.diff(edges_s)


def in_flight(start_s: FloatArray, end_s: FloatArray, at_s: FloatArray) -> FloatArray:
    """Requests in flight at each time of `at_s`: started at or before it, not yet ended."""
    started = np.searchsorted(np.sort(start_s), at_s, side="right")
    ended = np.searchsorted(np.sort(end_s), at_s, side="right")
    return (started - ended).astype(np.float64)
