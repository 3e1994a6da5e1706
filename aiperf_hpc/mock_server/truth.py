"""The mock server's ground truth: counters, a log of recent requests and the latencies the mock
really produced, which client tests and benchmarks compare their own measurements against."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiperf_hpc.mock_server.faults import FAULT_KINDS, FaultKind
from aiperf_hpc.mock_server.parsing import Endpoint

REQUEST_LOG_SIZE = 100_000
TEXT_PREFIX_CHARS = 40
LATENCY_LOG_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class RequestSeen:
    """One valid request as it arrived. `arrival_s` is `time.monotonic()` when its handler started;
    `messages_count` is None except for chat; `last_user_text_prefix` holds the first
    `TEXT_PREFIX_CHARS` characters of the last user message (chat), the prompt (completions) or the
    input (embeddings; the first of a list); `max_tokens` is what the body asked for, None when it
    asked nothing (and always for embeddings)."""

    endpoint: Endpoint
    arrival_s: float
    model: str
    messages_count: int | None
    last_user_text_prefix: str
    max_tokens: int | None


class MockStats:
    """Counts requests to the `/v1` endpoints that do work (chat, completions, embeddings).

    A request is in flight from the moment its handler starts until its response is fully written,
    whatever the outcome (success, validation error, injected error or fault, client disconnect).
    `errors_injected` counts the injected error statuses (`errors_by_status` per status) and
    `faults_injected` each fault kind injected (faults.py). The log keeps the last
    `REQUEST_LOG_SIZE` requests that passed validation, in arrival order.

    The actual latencies are those of the last `LATENCY_LOG_SIZE` streams that ended as asked (no
    fault, client still there), from `perf_counter` readings taken when the handler started and just
    before the bytes of the first and of the last content token were handed to the transport: TTFT
    is first - arrival, ITL is (last - first) / (tokens - 1) for streams of two tokens or more. They
    include the mock's own lateness (a saturated CPU, timer granularity), which the configured
    `ttft_ms` and `itl_ms` do not.
    Only the event loop thread calls these methods.
    """

    def __init__(self) -> None:
        self.requests_total = 0
        self.requests_in_flight = 0
        self.max_in_flight = 0
        self.errors_injected = 0
        self.errors_by_status: dict[int, int] = {}
        self.faults_injected: dict[FaultKind, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._log: deque[RequestSeen] = deque(maxlen=REQUEST_LOG_SIZE)
        self._ttft_ms: deque[float] = deque(maxlen=LATENCY_LOG_SIZE)
        self._itl_ms: deque[float] = deque(maxlen=LATENCY_LOG_SIZE)
        self._idle = asyncio.Event()
        self._idle.set()

    def on_arrival(self) -> None:
        self.requests_total += 1
        self.requests_in_flight += 1
        self._idle.clear()
        if self.requests_in_flight > self.max_in_flight:
            self.max_in_flight = self.requests_in_flight

    def on_departure(self) -> None:
        self.requests_in_flight -= 1
        if self.requests_in_flight == 0:
            self._idle.set()

    def on_error_injected(self, status: int) -> None:
        self.errors_injected += 1
        self.errors_by_status[status] = self.errors_by_status.get(status, 0) + 1

    def on_fault_injected(self, kind: FaultKind) -> None:
        self.faults_injected[kind] += 1

    def on_request_seen(self, seen: RequestSeen) -> None:
        self._log.append(seen)

    def on_stream_written(self, arrived_s: float, first_token_s: float, last_token_s: float, tokens: int) -> None:
        """A stream of `tokens` (>= 1) content tokens ended as asked; times are `perf_counter` seconds."""
        self._ttft_ms.append((first_token_s - arrived_s) * 1e3)
        if tokens >= 2:
            self._itl_ms.append((last_token_s - first_token_s) * 1e3 / (tokens - 1))

    async def wait_idle(self) -> None:
        """Return once no request is in flight; unbounded, so callers bound it."""
        await self._idle.wait()

    def reset(self) -> None:
        """Zero the counters and empty the request log. Requests still in flight stay counted in
        `requests_in_flight`, and `max_in_flight` restarts from that level."""
        self.requests_total = 0
        self.errors_injected = 0
        self.errors_by_status.clear()
        self.faults_injected = dict.fromkeys(FAULT_KINDS, 0)
        self.max_in_flight = self.requests_in_flight
        self._log.clear()
        self._ttft_ms.clear()
        self._itl_ms.clear()

    def snapshot(self, ttft_ms: float, itl_ms: float) -> dict[str, Any]:
        return {
            "requests_total": self.requests_total,
            "requests_in_flight": self.requests_in_flight,
            "max_in_flight": self.max_in_flight,
            "errors_injected": self.errors_injected,
            "errors_by_status": {str(status): count for status, count in sorted(self.errors_by_status.items())},
            "faults_injected": dict(self.faults_injected),
            "ttft_ms": ttft_ms,
            "itl_ms": itl_ms,
            "actual_ttft_ms": distribution(self._ttft_ms),
            "actual_itl_ms": distribution(self._itl_ms),
        }

    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first, as JSON-ready dicts with the fields of `RequestSeen`."""
        # Spelled out: `dataclasses.asdict` deep-copies and takes seconds on a full log.
        return [
            {
                "endpoint": seen.endpoint,
                "arrival_s": seen.arrival_s,
                "model": seen.model,
                "messages_count": seen.messages_count,
                "last_user_text_prefix": seen.last_user_text_prefix,
                "max_tokens": seen.max_tokens,
            }
            for seen in self._log
        ]


def distribution(values_ms: deque[float]) -> dict[str, float | int | None]:
    """count, mean, p50, p99 and max of `values_ms` (numpy's linear percentiles, as the client's
    metrics use); None for each figure when there is no value."""
    if not values_ms:
        return {"count": 0, "mean": None, "p50": None, "p99": None, "max": None}
    values = np.fromiter(values_ms, dtype=np.float64, count=len(values_ms))
    p50, p99 = (float(v) for v in np.percentile(values, (50, 99)))
    return {"count": len(values), "mean": float(values.mean()), "p50": p50, "p99": p99, "max": float(values.max())}
