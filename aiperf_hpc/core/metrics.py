"""Per-request and run-level metrics of one run, computed from its records.

Input is the records of a run as columns (`core.record_columns.RecordColumns`), which the
post-processor builds while it reads `records.jsonl`: no pydantic model and no list of a million
dicts. `compute_metrics` takes records as plain mappings, the shape of a `records.jsonl` line
(`RequestRecord.model_dump(mode="json")`), and `compute_metrics_from_models` a list of
`RequestRecord`; both turn them into columns first.

Only `phase == "profiling"` records count. Every statistic is vectorised over the columns: a
million records of 16 response times each take well under a second, the breakdown by node included.

What is measured (successes only unless stated; `*_ns` in, milliseconds out):

- request_latency: `latency_ns`
- time_to_first_token: `response_times_ns[0]` (records with a response time, i.e. streaming)
- time_to_second_token: `response_times_ns[1] - response_times_ns[0]`
- inter_token_latency: `(latency_ns - ttft_ns) / (output_tokens - 1)`, records with a TTFT and
  `output_tokens >= 2`
- inter_chunk_latency: every gap between consecutive response times, all records flattened
- output_token_throughput_per_user: `1e9 / inter_token_latency_ns` in tokens/s (ITL > 0 only)
- input_sequence_length / output_sequence_length: `input_tokens` / `output_tokens`

With a schedule (rate and trace modes: records with `scheduled_wall_ns`):

- send_lag: `started_wall_ns - scheduled_wall_ns`, over successes, errors and cancelled records
  (not lost ones: their start time is when the loss was noticed). Negative when a request went out
  early; reported as is.
- request_latency_from_intended / time_to_first_token_from_intended: the latency plus the send
  lag, i.e. measured from when the request should have been sent. This is the coordinated-omission
  correction: a client that falls behind its schedule makes every later request wait, and the
  server's latency alone would hide that wait.

A metric with no values is left out of `RunMetrics.metrics` rather than reported as NaN, so the
scheduled metrics are absent from closed-loop (concurrency) runs.

`RunMetrics.by_node` breaks the counts, throughputs, send lag and latency down by node
(`core.node_metrics`), and `clock_offset_bound_ms` says how far apart the nodes' clocks may be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from aiperf_hpc.core.goodput import check_goodput_slos, count_good
from aiperf_hpc.core.node_metrics import NodeColumns, NodeMetrics, compute_by_node
from aiperf_hpc.core.record_columns import (
    OUTCOME_CANCELLED,
    OUTCOME_LOST,
    OUTCOME_SUCCESS,
    RecordColumns,
    record_columns,
)
from aiperf_hpc.protocol.messages import RequestRecord

PERCENTILES: tuple[int, ...] = (1, 5, 10, 25, 50, 75, 90, 95, 99)

# Metric name -> unit, in display order: each latency is followed by the same latency measured
# from the intended send time.
METRIC_UNITS: dict[str, str] = {
    "request_latency": "ms",
    "request_latency_from_intended": "ms",
    "time_to_first_token": "ms",
    "time_to_first_token_from_intended": "ms",
    "time_to_second_token": "ms",
    "inter_token_latency": "ms",
    "inter_chunk_latency": "ms",
    "output_token_throughput_per_user": "tokens/s",
    "input_sequence_length": "tokens",
    "output_sequence_length": "tokens",
    "send_lag": "ms",
}

# Run-level figure name -> unit, in display order.
RUN_FIGURE_UNITS: dict[str, str] = {
    "request_count": "requests",
    "success_count": "requests",
    "error_count": "requests",
    "cancelled_count": "requests",
    "lost_count": "requests",
    "nodes": "nodes",
    "benchmark_duration_s": "s",
    "request_throughput": "requests/s",
    "output_token_throughput": "tokens/s",
    "total_token_throughput": "tokens/s",
    "achieved_request_rate": "requests/s",
    "scheduled_request_rate": "requests/s",
    "goodput": "requests/s",
    "good_request_fraction": "fraction",
    "clock_offset_bound_ms": "ms",
}

_NS_PER_MS = 1e6
_NS_PER_S = 1e9

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MetricStats(_Frozen):
    """Statistics of one metric. `std` is the population standard deviation (ddof=0);
    percentiles use numpy's linear interpolation."""

    unit: str
    avg: float
    min: float
    max: float
    std: float
    p1: float
    p5: float
    p10: float
    p25: float
    p50: float
    p75: float
    p90: float
    p95: float
    p99: float
    count: int


class ErrorTypeSummary(_Frozen):
    """How often one error key occurred, and the first message seen for it (None if none had one)."""

    count: int
    sample_message: str | None


class RunMetrics(_Frozen):
    """Everything computed from one run's profiling records.

    `benchmark_duration_s` and the throughputs are None when no profiling record has a latency
    (or the duration is zero): there is no time span to divide by.
    `errors_by_type` is keyed by `error_type`, or `"http_error:<status>"` for HTTP errors, most
    frequent first; "cancelled" and "lost" records are only in their own counts, never errors.

    `achieved_request_rate` is the rate requests were actually sent at: (n - 1) / (last start -
    first start) over the n records that were sent (all but lost ones); `scheduled_request_rate` is
    the same over the intended send times of every record that has one. Both count intervals, not
    requests, so a constant schedule at R req/s gives exactly R. None with fewer than two times (or
    a zero span); `scheduled_request_rate` is None for closed-loop runs.

    `goodput` is the number of good requests (successes meeting every SLO of `goodput_slos`) per
    second of `benchmark_duration_s`; `good_request_fraction` is good requests / `request_count`,
    so errors, cancelled and lost requests count against it. Both are None without a goodput spec.

    `output_tokens_source` counts successes by where their `output_tokens` came from ("usage",
    "tokenizer", "chunks"); successes without a source are not counted.

    `by_node` is the run broken down by node, keyed by node name (see `core.node_metrics`);
    `nodes` counts the nodes that profiling records name. `clock_offset_bound_ms` is the largest
    `clock_offset_bound_ns` of the profiling records: how far any node's wall-clock times may be
    off the controller's clock. None when no record carries one.
    """

    metrics: dict[str, MetricStats]
    request_count: int
    success_count: int
    error_count: int
    cancelled_count: int
    lost_count: int
    benchmark_duration_s: float | None
    request_throughput: float | None
    output_token_throughput: float | None
    total_token_throughput: float | None
    errors_by_type: dict[str, ErrorTypeSummary]
    achieved_request_rate: float | None = None
    scheduled_request_rate: float | None = None
    goodput: float | None = None
    good_request_fraction: float | None = None
    goodput_slos: dict[str, float] | None = None
    output_tokens_source: dict[str, int] = Field(default_factory=dict)
    by_node: dict[str, NodeMetrics] = Field(default_factory=dict)
    nodes: int = 0
    clock_offset_bound_ms: float | None = None

    def run_figures(self) -> dict[str, int | float | None]:
        """The run-level figures by name, in the order of `RUN_FIGURE_UNITS`."""
        return {name: getattr(self, name) for name in RUN_FIGURE_UNITS}


def compute_metrics(records: Iterable[Mapping[str, Any]], goodput: Mapping[str, float] | None = None) -> RunMetrics:
    """Compute the run's metrics from records shaped like `RequestRecord.model_dump(mode="json")`.

    Raises what `record_columns` and `metrics_of_columns` raise.
    """
    return metrics_of_columns(record_columns(records), goodput)


def metrics_of_columns(columns: RecordColumns, goodput: Mapping[str, float] | None = None) -> RunMetrics:
    """Compute the run's metrics from its profiling records as columns.

    `goodput` maps per-request metric names to SLOs (see `core.goodput`); None or an empty mapping
    means no goodput (the figures stay None).
    Raises UsageError when `goodput` names an unknown metric or a value that is not > 0.
    """
    slos = dict(goodput) if goodput else None
    if slos is not None:
        check_goodput_slos(slos)
    cols = _collect(columns)
    duration_s = _duration_s(cols)
    success_count = int(cols.success_latency_ns.size)
    output_tokens_sum = _sum_known(cols.success_output_tokens)
    input_tokens_sum = _sum_known(cols.success_input_tokens)

    def per_s(total: int) -> float | None:
        return None if duration_s is None else total / duration_s

    per_request = _per_request_values(cols)
    stats = {name: _stats(per_request[name], unit) for name, unit in METRIC_UNITS.items()}
    good_count = None if slos is None else count_good(per_request, slos, success_count)
    error_count = len(columns.errors)
    breakdown = compute_by_node(cols.nodes, duration_s)
    return RunMetrics(
        metrics={name: s for name, s in stats.items() if s is not None},
        request_count=columns.request_count,
        success_count=success_count,
        error_count=error_count,
        cancelled_count=cols.cancelled_count,
        lost_count=cols.lost_count,
        benchmark_duration_s=duration_s,
        request_throughput=per_s(success_count),
        output_token_throughput=per_s(output_tokens_sum),
        total_token_throughput=per_s(input_tokens_sum + output_tokens_sum),
        errors_by_type=_errors_by_type(columns.errors),
        achieved_request_rate=_rate_per_s(cols.sent_start_wall_ns),
        scheduled_request_rate=_rate_per_s(cols.scheduled_wall_ns),
        goodput=None if good_count is None else per_s(good_count),
        good_request_fraction=None
        if good_count is None or not columns.request_count
        else good_count / columns.request_count,
        goodput_slos=slos,
        output_tokens_source=dict(sorted(columns.output_tokens_source.items(), key=lambda item: (-item[1], item[0]))),
        by_node=breakdown.by_node,
        nodes=breakdown.node_count,
        clock_offset_bound_ms=_max_ms(columns.clock_offset_bound_ns),
    )


def compute_metrics_from_models(
    records: Sequence[RequestRecord], goodput: Mapping[str, float] | None = None
) -> RunMetrics:
    """`compute_metrics` for `RequestRecord` models (slower: each is dumped to a dict first)."""
    return compute_metrics((record.model_dump() for record in records), goodput)


def _errors_by_type(errors: Sequence[tuple[str, str | None]]) -> dict[str, ErrorTypeSummary]:
    """Count per key, most frequent first (then by key); the sample is the first message given."""
    counts: dict[str, int] = {}
    samples: dict[str, str | None] = {}
    for key, message in errors:
        counts[key] = counts.get(key, 0) + 1
        if samples.get(key) is None:
            samples[key] = message
    return {
        key: ErrorTypeSummary(count=count, sample_message=samples[key])
        for key, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    }


@dataclass(frozen=True)
class _Columns:
    """The one-pass collection as arrays. Per-success arrays are aligned by index and hold -1 (NaN
    for the float ones) for a missing value."""

    cancelled_count: int
    lost_count: int
    # Every profiling record with a latency, for the benchmark duration.
    timed_start_wall_ns: IntArray
    timed_latency_ns: IntArray
    # Every profiling record but lost ones (they were never known to be sent).
    sent_start_wall_ns: IntArray
    # Every profiling record with a schedule, lost ones included (the plan is the plan).
    scheduled_wall_ns: IntArray
    # Send lag of every record with a schedule, but lost ones.
    send_lag_ns: IntArray
    # Successes only.
    success_latency_ns: IntArray
    success_input_tokens: IntArray
    success_output_tokens: IntArray
    success_response_count: IntArray
    success_send_lag_ns: FloatArray
    # All successes' response times, concatenated in record order.
    response_times_ns: IntArray
    # Every profiling record's node, worker and outcome, for the breakdown by node.
    nodes: NodeColumns


def _collect(columns: RecordColumns) -> _Columns:
    outcome = columns.outcome
    success = outcome == OUTCOME_SUCCESS
    lost = outcome == OUTCOME_LOST
    sent = ~lost
    started_ns = columns.started_wall_ns
    # Where a record has no schedule the difference is meaningless and masked out below.
    lag_ns = started_ns - columns.scheduled_wall_ns
    sent_scheduled = sent & columns.has_schedule
    timed = sent & (columns.latency_ns >= 0)
    success_latency_ns = columns.latency_ns[success]
    success_output_tokens = columns.output_tokens[success]
    send_lag_ns = lag_ns[sent_scheduled]
    return _Columns(
        cancelled_count=int(np.count_nonzero(outcome == OUTCOME_CANCELLED)),
        lost_count=int(np.count_nonzero(lost)),
        timed_start_wall_ns=started_ns[timed],
        timed_latency_ns=columns.latency_ns[timed],
        sent_start_wall_ns=started_ns[sent],
        scheduled_wall_ns=columns.scheduled_wall_ns[columns.has_schedule],
        send_lag_ns=send_lag_ns,
        success_latency_ns=success_latency_ns,
        success_input_tokens=columns.input_tokens[success],
        success_output_tokens=success_output_tokens,
        success_response_count=columns.response_count[success],
        # NaN without a schedule; lags are small enough for float64 to hold them exactly.
        success_send_lag_ns=np.where(columns.has_schedule, lag_ns, np.nan)[success],
        response_times_ns=columns.response_times_ns,
        nodes=NodeColumns(
            node_code=columns.node_code,
            node_names=columns.node_names,
            worker_code=columns.worker_code,
            worker_names=columns.worker_names,
            outcome=outcome,
            has_schedule=columns.has_schedule,
            clock_offset_bound_ns=columns.clock_offset_bound_ns,
            success_latency_ns=success_latency_ns,
            success_output_tokens=success_output_tokens,
            send_lag_ns=send_lag_ns,
        ),
    )


def _sum_known(values: IntArray) -> int:
    """Sum of the non-missing (>= 0) values."""
    return int(values[values >= 0].sum())


def _duration_s(cols: _Columns) -> float | None:
    if cols.timed_start_wall_ns.size == 0:
        return None
    end_wall_ns = cols.timed_start_wall_ns + cols.timed_latency_ns
    duration_ns = int(end_wall_ns.max()) - int(cols.timed_start_wall_ns.min())
    return duration_ns / _NS_PER_S if duration_ns > 0 else None


def _max_ms(values_ns: FloatArray) -> float | None:
    """Largest non-NaN value in milliseconds; None when there is none."""
    known_ns = values_ns[~np.isnan(values_ns)]
    return float(known_ns.max()) / _NS_PER_MS if known_ns.size else None


def _rate_per_s(times_ns: IntArray) -> float | None:
    """Events per second over the span of `times_ns`: intervals / span. None under two events."""
    if times_ns.size < 2:
        return None
    span_ns = int(times_ns.max()) - int(times_ns.min())
    return (times_ns.size - 1) * _NS_PER_S / span_ns if span_ns > 0 else None


def _known(values: IntArray) -> FloatArray:
    """`values` as floats with the missing (-1) ones as NaN."""
    return np.where(values >= 0, values, np.nan)


def _per_request_values(cols: _Columns) -> dict[str, FloatArray]:
    """Every metric's values in its display unit, keyed like `METRIC_UNITS`.

    Per-request metrics (all but inter_chunk_latency and send_lag) are aligned by success, with
    NaN where a success has no value, because goodput judges each request on all its metrics;
    inter_chunk_latency and send_lag have their own lengths. `_stats` drops the NaNs.
    """
    latency_ns = cols.success_latency_ns
    output_tokens = cols.success_output_tokens
    counts = cols.success_response_count
    flat_ns = cols.response_times_ns
    size = counts.size
    # Index of each success's first response time in `flat_ns` (meaningful only where counts > 0).
    first_idx = np.cumsum(counts) - counts

    has_first = counts >= 1
    has_second = counts >= 2
    ttft_ns = np.zeros(size, dtype=np.int64)
    ttft_ns[has_first] = flat_ns[first_idx[has_first]]
    ttft_ms = np.full(size, np.nan)
    ttft_ms[has_first] = ttft_ns[has_first] / _NS_PER_MS
    ttst_ms = np.full(size, np.nan)
    ttst_ms[has_second] = (flat_ns[first_idx[has_second] + 1] - flat_ns[first_idx[has_second]]) / _NS_PER_MS

    has_itl = has_first & (output_tokens >= 2) & (latency_ns >= 0)
    itl_ns = np.full(size, np.nan)
    itl_ns[has_itl] = (latency_ns[has_itl] - ttft_ns[has_itl]) / (output_tokens[has_itl] - 1).astype(np.float64)
    per_user = np.full(size, np.nan)
    positive_itl = itl_ns > 0  # False for NaN
    per_user[positive_itl] = _NS_PER_S / itl_ns[positive_itl]

    latency_ms = _known(latency_ns) / _NS_PER_MS
    send_lag_ms = cols.success_send_lag_ns / _NS_PER_MS
    return {
        "request_latency": latency_ms,
        "request_latency_from_intended": latency_ms + send_lag_ms,
        "time_to_first_token": ttft_ms,
        "time_to_first_token_from_intended": ttft_ms + send_lag_ms,
        "time_to_second_token": ttst_ms,
        "inter_token_latency": itl_ns / _NS_PER_MS,
        "inter_chunk_latency": _inter_chunk_ms(flat_ns, first_idx),
        "output_token_throughput_per_user": per_user,
        "input_sequence_length": _known(cols.success_input_tokens),
        "output_sequence_length": _known(output_tokens),
        "send_lag": cols.send_lag_ns / _NS_PER_MS,
    }


def _inter_chunk_ms(flat_ns: IntArray, first_idx: IntArray) -> FloatArray:
    """Gaps between consecutive response times of the same record, in ms: all gaps of the
    concatenation, with the ones that jump from one record's last time to the next record's first
    set to NaN (which `_stats` drops)."""
    if flat_ns.size < 2:
        return np.empty(0)
    # In float64 directly: response times are offsets far below 2**53 ns, so every difference is
    # exact, as it would be in int64.
    gaps_ms = np.subtract(flat_ns[1:], flat_ns[:-1], dtype=np.float64)
    gaps_ms /= _NS_PER_MS
    # A record starting at index i > 0 makes gap i - 1 cross a record boundary. Records with no
    # response times share the next record's start (or len(flat_ns) when last), hence the filter.
    boundaries = first_idx[(first_idx > 0) & (first_idx < flat_ns.size)]
    gaps_ms[boundaries - 1] = np.nan
    return gaps_ms


def _stats(values: FloatArray, unit: str) -> MetricStats | None:
    """Statistics of the values that are not NaN; None when there are none."""
    values = values[~np.isnan(values)]  # a copy, which the percentiles may reorder in place
    if values.size == 0:
        return None
    avg, low, high, std = float(values.mean()), float(values.min()), float(values.max()), float(values.std())
    percentiles = np.percentile(values, PERCENTILES, overwrite_input=True)
    p1, p5, p10, p25, p50, p75, p90, p95, p99 = (float(v) for v in percentiles)
    return MetricStats(
        unit=unit,
        avg=avg,
        min=low,
        max=high,
        std=std,
        p1=p1,
        p5=p5,
        p10=p10,
        p25=p25,
        p50=p50,
        p75=p75,
        p90=p90,
        p95=p95,
        p99=p99,
        count=int(values.size),
    )
