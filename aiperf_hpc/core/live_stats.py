"""Running figures of a run while it runs: what the live view and the live /metrics show.

The records manager feeds every accepted record to `LiveAggregator.add` as batches arrive and sends
`snapshot()` (a `LiveStats` message) every second. Per record the work is a few counter updates and
appending at most three numbers (TTFT, ITL, latency) to a list, never a loop over its tokens; the
histograms and rolling windows take those values as one numpy array per node at the next snapshot
(or every `FLUSH_EVERY` values), because workers send records one at a time and numpy per record
would cost more than the record. Memory is bounded: counters and histograms are per node and per
error type, the pending values at most `FLUSH_EVERY`, the rolling percentiles keep the last
`ROLLING_WINDOW` successes and the rates the last `RATE_WINDOW_S` seconds of one-second snapshots.

Only profiling records count (warmup ones only in `warmup_requests`), as in the final results, so
the last snapshot's totals are the run's request count. The figures here are a live approximation:
ITL is per request, `(latency - TTFT) / (output tokens - 1)`, as in `core.metrics`; the rates use
the records' arrival at the records manager, not their timestamps. `profile_export.json` remains
the measurement.

`LiveStatus` is what the CLI process knows at an instant: the latest `LiveStats` plus the worker
manager's in-flight count and the workers alive by node.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from aiperf_hpc.core.node_metrics import UNKNOWN_NODE
from aiperf_hpc.protocol.messages import LiveHistogram, LiveStats, NodeLiveStats, RequestRecord

FloatArray = npt.NDArray[np.float64]

# Histogram bucket upper bounds in seconds (Prometheus `le`), close to vLLM's own for the same
# figures, with finer buckets at the low end where a fast server or the mock lands.
TTFT_BOUNDS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0,
)  # fmt: skip
ITL_BOUNDS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
LATENCY_BOUNDS_S: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip

ROLLING_WINDOW = 1000  # successes the rolling percentiles are taken over
RATE_WINDOW_S = 5.0  # seconds the rates are taken over
FLUSH_EVERY = 10_000  # pending values that make `add` fold them in without waiting for a snapshot
_MAX_RATE_SAMPLES = 64  # bounds the rate window when snapshots come faster than once a second

_NS_PER_S = 1e9
_NS_PER_MS = 1e6


class _Histogram:
    """Counts per bucket (the last one: above every bound) and the sum of observations, in seconds."""

    def __init__(self, bounds_s: tuple[float, ...]) -> None:
        self._bounds_s = np.asarray(bounds_s, dtype=np.float64)
        self._counts = np.zeros(len(bounds_s) + 1, dtype=np.int64)
        self._sum_s = 0.0

    def observe(self, values_s: FloatArray) -> None:
        # side="left": the first bound >= value, i.e. value <= le, Prometheus' bucket rule.
        index = np.searchsorted(self._bounds_s, values_s, side="left")
        self._counts += np.bincount(index, minlength=self._counts.size)
        self._sum_s += float(values_s.sum())

    def snapshot(self) -> LiveHistogram:
        cumulative = np.cumsum(self._counts)
        return LiveHistogram(buckets=cumulative[:-1].tolist(), count=int(cumulative[-1]), sum_s=self._sum_s)


class _Ring:
    """The last `capacity` values written, in a fixed array."""

    def __init__(self, capacity: int) -> None:
        self._values = np.empty(capacity, dtype=np.float64)
        self._next = 0
        self._filled = 0

    def extend(self, values: FloatArray) -> None:
        capacity = self._values.size
        values = values[-capacity:]
        end = self._next + values.size
        if end <= capacity:
            self._values[self._next : end] = values
        else:
            split = capacity - self._next
            self._values[self._next :] = values[:split]
            self._values[: end - capacity] = values[split:]
        self._next = end % capacity
        self._filled = min(capacity, self._filled + values.size)

    def p50_p99(self) -> tuple[float | None, float | None]:
        """p50 and p99 (numpy's linear interpolation) of the values held; (None, None) when empty."""
        if self._filled == 0:
            return None, None
        p50, p99 = np.percentile(self._values[: self._filled], (50.0, 99.0))
        return float(p50), float(p99)


class _NodeTally:
    def __init__(self) -> None:
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.output_tokens = 0
        self.input_tokens = 0
        self.ttft = _Histogram(TTFT_BOUNDS_S)
        self.itl = _Histogram(ITL_BOUNDS_S)
        self.latency = _Histogram(LATENCY_BOUNDS_S)

    def snapshot(self) -> NodeLiveStats:
        return NodeLiveStats(
            requests=self.requests,
            errors=dict(self.errors),
            output_tokens=self.output_tokens,
            input_tokens=self.input_tokens,
            time_to_first_token=self.ttft.snapshot(),
            inter_token_latency=self.itl.snapshot(),
            request_latency=self.latency.snapshot(),
        )


@dataclass
class _PendingValues:
    """One node's values since the last flush, in ns, before they go into the histograms as one array."""

    ttft_ns: list[int] = field(default_factory=list)
    itl_ns: list[float] = field(default_factory=list)
    latency_ns: list[int] = field(default_factory=list)


class LiveAggregator:
    """Running figures of the records seen so far. Call `add` with each batch's accepted records (no
    duplicates) and `snapshot` whenever the figures are to be sent; both take the caller's
    `perf_counter_ns()` as `now_ns` and never read a clock."""

    def __init__(self, rolling_window: int = ROLLING_WINDOW, rate_window_s: float = RATE_WINDOW_S) -> None:
        self._nodes: dict[str, _NodeTally] = {}
        self._worker_nodes: dict[str, str] = {}  # a lost record names no node; its worker's records do
        self._warmup_requests = 0
        self._requests = 0
        self._output_tokens = 0
        self._first_profiling_ns: int | None = None
        self._ttft_ms = _Ring(rolling_window)
        self._itl_ms = _Ring(rolling_window)
        self._latency_ms = _Ring(rolling_window)
        self._rate_window_ns = int(rate_window_s * _NS_PER_S)
        self._rate_samples: deque[tuple[int, int, int]] = deque(maxlen=_MAX_RATE_SAMPLES)
        self._pending: dict[str, _PendingValues] = {}
        self._pending_count = 0

    def add(self, records: Iterable[RequestRecord], now_ns: int) -> None:
        pending = self._pending
        for record in records:
            if record.phase != "profiling":
                self._warmup_requests += 1
                continue
            if record.node:
                self._worker_nodes[record.worker_id] = record.node
                node = record.node
            else:
                node = self._worker_nodes.get(record.worker_id, UNKNOWN_NODE)
            tally = self._nodes.get(node)
            if tally is None:
                tally = self._nodes[node] = _NodeTally()
            tally.requests += 1
            self._requests += 1
            error_type = record.error_type
            if error_type is not None:
                if error_type != "cancelled":
                    tally.errors[error_type] = tally.errors.get(error_type, 0) + 1
                continue
            tally.output_tokens += record.output_tokens or 0
            tally.input_tokens += record.input_tokens or 0
            self._output_tokens += record.output_tokens or 0
            values = pending.get(node)
            if values is None:
                values = pending[node] = _PendingValues()
            self._pending_count += 1
            latency_ns = record.latency_ns
            if latency_ns is not None:
                values.latency_ns.append(latency_ns)
            if record.response_times_ns:
                ttft_ns = record.response_times_ns[0]
                values.ttft_ns.append(ttft_ns)
                output_tokens = record.output_tokens
                if latency_ns is not None and output_tokens is not None and output_tokens >= 2:
                    values.itl_ns.append((latency_ns - ttft_ns) / (output_tokens - 1))
        if self._requests and self._first_profiling_ns is None:
            self._first_profiling_ns = now_ns
        if self._pending_count >= FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        """Fold the pending values into the histograms and rolling windows, one array per node and figure."""
        for node, values in self._pending.items():
            tally = self._nodes[node]
            for histogram, ring, values_ns in (
                (tally.ttft, self._ttft_ms, values.ttft_ns),
                (tally.itl, self._itl_ms, values.itl_ns),
                (tally.latency, self._latency_ms, values.latency_ns),
            ):
                if values_ns:
                    array_ns = np.asarray(values_ns, dtype=np.float64)
                    histogram.observe(array_ns / _NS_PER_S)
                    ring.extend(array_ns / _NS_PER_MS)
        self._pending = {}
        self._pending_count = 0

    def snapshot(self, now_ns: int) -> LiveStats:
        self._flush()
        samples = self._rate_samples
        samples.append((now_ns, self._requests, self._output_tokens))
        # Keep the newest sample at least a window old as the base of the rates.
        while len(samples) >= 2 and samples[1][0] <= now_ns - self._rate_window_ns:
            samples.popleft()
        base_ns, base_requests, base_tokens = samples[0]
        span_s = (now_ns - base_ns) / _NS_PER_S
        ttft_p50, ttft_p99 = self._ttft_ms.p50_p99()
        itl_p50, itl_p99 = self._itl_ms.p50_p99()
        latency_p50, latency_p99 = self._latency_ms.p50_p99()
        first_ns = self._first_profiling_ns
        return LiveStats(
            warmup_requests=self._warmup_requests,
            by_node={node: tally.snapshot() for node, tally in sorted(self._nodes.items())},
            request_rate_per_s=(self._requests - base_requests) / span_s if span_s > 0 else None,
            output_token_rate_per_s=(self._output_tokens - base_tokens) / span_s if span_s > 0 else None,
            ttft_p50_ms=ttft_p50,
            ttft_p99_ms=ttft_p99,
            itl_p50_ms=itl_p50,
            itl_p99_ms=itl_p99,
            latency_p50_ms=latency_p50,
            latency_p99_ms=latency_p99,
            profiling_for_s=None if first_ns is None else (now_ns - first_ns) / _NS_PER_S,
        )


@dataclass(frozen=True)
class LiveStatus:
    """What the CLI process knows of a running run at one instant. `stats` is None before the first
    figures arrive; `in_flight` and `workers_alive` are None before the worker manager's first status;
    `workers_by_node` counts the registered workers not lost, by node."""

    stats: LiveStats | None
    in_flight: int | None
    workers_alive: int | None
    workers_by_node: Mapping[str, int]
