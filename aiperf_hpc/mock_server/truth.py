"""The mock server's ground truth: counters that client tests compare their own measurements against."""

from __future__ import annotations

from typing import Any


class MockStats:
    """Counts generation requests (`/v1/chat/completions`, `/v1/completions`).

    A request is in flight from the moment its handler starts until its response is fully written,
    whatever the outcome (success, validation error, injected error, client disconnect).
    Only the event loop thread calls these methods.
    """

    def __init__(self) -> None:
        self.requests_total = 0
        self.requests_in_flight = 0
        self.max_in_flight = 0
        self.errors_injected = 0

    def on_arrival(self) -> None:
        self.requests_total += 1
        self.requests_in_flight += 1
        if self.requests_in_flight > self.max_in_flight:
            self.max_in_flight = self.requests_in_flight

    def on_departure(self) -> None:
        self.requests_in_flight -= 1

    def on_error_injected(self) -> None:
        self.errors_injected += 1

    def reset(self) -> None:
        """Zero the counters. Requests still in flight stay counted in `requests_in_flight`,
        and `max_in_flight` restarts from that level."""
        self.requests_total = 0
        self.errors_injected = 0
        self.max_in_flight = self.requests_in_flight

    def snapshot(self, ttft_ms: float, itl_ms: float) -> dict[str, Any]:
        return {
            "requests_total": self.requests_total,
            "requests_in_flight": self.requests_in_flight,
            "max_in_flight": self.max_in_flight,
            "errors_injected": self.errors_injected,
            "ttft_ms": ttft_ms,
            "itl_ms": itl_ms,
        }
