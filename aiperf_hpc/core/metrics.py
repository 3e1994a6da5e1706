"""Per-request and run-level metrics of one run, computed from its records.

Input is the records of a run as plain mappings, the shape of a `records.jsonl` line
(`RequestRecord.model_dump(mode="json")`), because the post-processor reads that file and building
a million pydantic models only to read their fields again costs more than the statistics.
`compute_metrics_from_models` is the thin entry for a list of `RequestRecord`.

Only `phase == "profiling"` records count. One pass in Python collects numpy arrays; every
statistic after that is vectorised: a million records take about two seconds, about five when
each has 20 response times (20 million inter-chunk gaps), the breakdown by node included.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from aiperf_hpc.core.goodput import check_goodput_slos, count_good
from aiperf_hpc.core.node_metrics import (
    OUTCOME_CANCELLED,
    OUTCOME_ERROR,
    OUTCOME_LOST,
    OUTCOME_SUCCESS,
    NodeColumns,
    NodeMetrics,
    compute_by_node,
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


def compute_metrics(records: Sequence[Mapping[str, Any]], goodput: Mapping[str, float] | None = None) -> RunMetrics:
    """Compute the run's metrics from records shaped like `RequestRecord.model_dump(mode="json")`.

    `goodput` maps per-request metric names to SLOs (see `core.goodput`); None or an empty mapping
    means no goodput (the figures stay None).
    Raises KeyError when a record other than a lost one lacks `phase` or `started_wall_ns`, and
    UsageError when `goodput` names an unknown metric or a value that is not > 0.
    """
    slos = dict(goodput) if goodput else None
    if slos is not None:
        check_goodput_slos(slos)
    cols = _collect(records)
    duration_s = _duration_s(cols)
    success_count = int(cols.success_latency_ns.size)
    output_tokens_sum = _sum_known(cols.success_output_tokens)
    input_tokens_sum = _sum_known(cols.success_input_tokens)

    def per_s(total: int) -> float | None:
        return None if duration_s is None else total / duration_s

    per_request = _per_request_values(cols)
    stats = {name: _stats(per_request[name], unit) for name, unit in METRIC_UNITS.items()}
    good_count = None if slos is None else count_good(per_request, slos, success_count)
    error_count = sum(summary.count for summary in cols.errors.values())
    breakdown = compute_by_node(cols.nodes, duration_s)
    return RunMetrics(
        metrics={name: s for name, s in stats.items() if s is not None},
        request_count=cols.request_count,
        success_count=success_count,
        error_count=error_count,
        cancelled_count=cols.cancelled_count,
        lost_count=cols.lost_count,
        benchmark_duration_s=duration_s,
        request_throughput=per_s(success_count),
        output_token_throughput=per_s(output_tokens_sum),
        total_token_throughput=per_s(input_tokens_sum + output_tokens_sum),
        errors_by_type={
            key: ErrorTypeSummary(count=e.count, sample_message=e.sample_message)
            for key, e in sorted(cols.errors.items(), key=lambda item: (-item[1].count, item[0]))
        },
        achieved_request_rate=_rate_per_s(cols.sent_start_wall_ns),
        scheduled_request_rate=_rate_per_s(cols.scheduled_wall_ns),
        goodput=None if good_count is None else per_s(good_count),
        good_request_fraction=None if good_count is None or not cols.request_count else good_count / cols.request_count,
        goodput_slos=slos,
        output_tokens_source=dict(sorted(cols.output_tokens_source.items(), key=lambda item: (-item[1], item[0]))),
        by_node=breakdown.by_node,
        nodes=breakdown.node_count,
        clock_offset_bound_ms=_max_ms(cols.nodes.clock_offset_bound_ns),
    )


def compute_metrics_from_models(
    records: Sequence[RequestRecord], goodput: Mapping[str, float] | None = None
) -> RunMetrics:
    """`compute_metrics` for `RequestRecord` models (slower: each is dumped to a dict first)."""
    return compute_metrics([record.model_dump() for record in records], goodput)


def error_key(error_type: str, status_code: int | None) -> str:
    """The `errors_by_type` key: `"http_error:500"` for HTTP errors with a status, else the type."""
    if error_type == "http_error" and status_code is not None:
        return f"{error_type}:{status_code}"
    return error_type


class _ErrorTally:
    __slots__ = ("count", "sample_message")

    def __init__(self) -> None:
        self.count = 0
        self.sample_message: str | None = None


@dataclass(frozen=True)
class _Columns:
    """The one-pass collection as arrays. Per-success arrays are aligned by index and hold -1 (NaN
    for the float ones) for a missing value."""

    request_count: int
    cancelled_count: int
    lost_count: int
    errors: dict[str, _ErrorTally]
    output_tokens_source: dict[str, int]
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


def _collect(records: Sequence[Mapping[str, Any]]) -> _Columns:
    # The one loop over a million records in Python: bound methods and locals, no attribute lookups.
    request_count = cancelled_count = lost_count = 0
    errors: dict[str, _ErrorTally] = {}
    sources: dict[str, int] = {}
    timed_start_wall_ns: list[int] = []
    timed_latency_ns: list[int] = []
    sent_start_wall_ns: list[int] = []
    scheduled_wall_ns: list[int] = []
    send_lag_ns: list[int] = []
    latency_ns_list: list[int] = []
    input_tokens_list: list[int] = []
    output_tokens_list: list[int] = []
    response_count_list: list[int] = []
    success_send_lag_ns: list[int | None] = []
    response_times_ns: list[int] = []
    profiling: list[Mapping[str, Any]] = []
    outcome_list: list[int] = []
    has_schedule_list: list[bool] = []
    add_timed_start = timed_start_wall_ns.append
    add_timed_latency = timed_latency_ns.append
    add_sent_start = sent_start_wall_ns.append
    add_scheduled = scheduled_wall_ns.append
    add_send_lag = send_lag_ns.append
    add_latency = latency_ns_list.append
    add_input_tokens = input_tokens_list.append
    add_output_tokens = output_tokens_list.append
    add_response_count = response_count_list.append
    add_success_send_lag = success_send_lag_ns.append
    add_response_times = response_times_ns.extend
    add_profiling = profiling.append
    add_outcome = outcome_list.append
    add_has_schedule = has_schedule_list.append
    success, error, cancelled, lost = OUTCOME_SUCCESS, OUTCOME_ERROR, OUTCOME_CANCELLED, OUTCOME_LOST
    for record in records:
        if record["phase"] != "profiling":
            continue
        request_count += 1
        get = record.get
        error_type = get("error_type")
        scheduled_ns = get("scheduled_wall_ns")
        add_profiling(record)
        add_has_schedule(scheduled_ns is not None)
        if scheduled_ns is not None:
            add_scheduled(scheduled_ns)
        if error_type == "lost":
            lost_count += 1
            add_outcome(lost)
            continue
        started_ns = record["started_wall_ns"]
        add_sent_start(started_ns)
        lag_ns = None
        if scheduled_ns is not None:
            lag_ns = started_ns - scheduled_ns
            add_send_lag(lag_ns)
        latency_ns = get("latency_ns")
        if latency_ns is not None:
            add_timed_start(started_ns)
            add_timed_latency(latency_ns)
        if error_type is None:
            add_outcome(success)
            add_latency(-1 if latency_ns is None else latency_ns)
            input_tokens = get("input_tokens")
            add_input_tokens(-1 if input_tokens is None else input_tokens)
            output_tokens = get("output_tokens")
            add_output_tokens(-1 if output_tokens is None else output_tokens)
            times_ns = get("response_times_ns") or ()
            add_response_count(len(times_ns))
            add_response_times(times_ns)
            add_success_send_lag(lag_ns)
            source = get("output_tokens_source")
            if source is not None:
                sources[source] = sources.get(source, 0) + 1
        elif error_type == "cancelled":
            cancelled_count += 1
            add_outcome(cancelled)
        else:
            add_outcome(error)
            key = error_key(error_type, get("status_code"))
            tally = errors.get(key)
            if tally is None:
                tally = errors[key] = _ErrorTally()
            tally.count += 1
            if tally.sample_message is None:
                tally.sample_message = get("error_message")
    success_latency_ns = np.asarray(latency_ns_list, dtype=np.int64)
    success_output_tokens = np.asarray(output_tokens_list, dtype=np.int64)
    send_lag = np.asarray(send_lag_ns, dtype=np.int64)
    return _Columns(
        request_count=request_count,
        cancelled_count=cancelled_count,
        lost_count=lost_count,
        errors=errors,
        output_tokens_source=sources,
        timed_start_wall_ns=np.asarray(timed_start_wall_ns, dtype=np.int64),
        timed_latency_ns=np.asarray(timed_latency_ns, dtype=np.int64),
        sent_start_wall_ns=np.asarray(sent_start_wall_ns, dtype=np.int64),
        scheduled_wall_ns=np.asarray(scheduled_wall_ns, dtype=np.int64),
        send_lag_ns=send_lag,
        success_latency_ns=success_latency_ns,
        success_input_tokens=np.asarray(input_tokens_list, dtype=np.int64),
        success_output_tokens=success_output_tokens,
        success_response_count=np.asarray(response_count_list, dtype=np.int64),
        # None becomes NaN; lags are small enough for float64 to hold them exactly.
        success_send_lag_ns=np.asarray(success_send_lag_ns, dtype=np.float64),
        response_times_ns=np.asarray(response_times_ns, dtype=np.int64),
        nodes=NodeColumns(
            # A comprehension per column after the loop costs less than appends inside it.
            node=[record.get("node", "") for record in profiling],
            worker_id=[record.get("worker_id", "") for record in profiling],
            outcome=np.asarray(outcome_list, dtype=np.int64),
            has_schedule=np.asarray(has_schedule_list, dtype=np.bool_),
            # None becomes NaN; bounds are far below 2**53 ns.
            clock_offset_bound_ns=np.asarray(
                [record.get("clock_offset_bound_ns") for record in profiling], dtype=np.float64
            ),
            success_latency_ns=success_latency_ns,
            success_output_tokens=success_output_tokens,
            send_lag_ns=send_lag,
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
        "inter_chunk_latency": _inter_chunk_ns(flat_ns, first_idx) / _NS_PER_MS,
        "output_token_throughput_per_user": per_user,
        "input_sequence_length": _known(cols.success_input_tokens),
        "output_sequence_length": _known(output_tokens),
        "send_lag": cols.send_lag_ns / _NS_PER_MS,
    }


def _inter_chunk_ns(flat_ns: IntArray, first_idx: IntArray) -> IntArray:
    """Gaps between consecutive response times of the same record: all gaps of the concatenation,
    minus the ones that jump from one record's last time to the next record's first."""
    if flat_ns.size < 2:
        return np.empty(0, dtype=np.int64)
    gaps_ns = np.diff(flat_ns)
    keep = np.ones(gaps_ns.size, dtype=bool)
    # A record starting at index i > 0 makes gap i - 1 cross a record boundary. Records with no
    # response times share the next record's start (or len(flat_ns) when last), hence the filter.
    boundaries = first_idx[(first_idx > 0) & (first_idx < flat_ns.size)]
    keep[boundaries - 1] = False
    return gaps_ns[keep]


def _stats(values: FloatArray, unit: str) -> MetricStats | None:
    """Statistics of the values that are not NaN; None when there are none."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    p1, p5, p10, p25, p50, p75, p90, p95, p99 = (float(v) for v in np.percentile(values, PERCENTILES))
    return MetricStats(
        unit=unit,
        avg=float(values.mean()),
        min=float(values.min()),
        max=float(values.max()),
        std=float(values.std()),
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
