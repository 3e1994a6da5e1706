"""The clock seam: every service reads time through a `Clock`, so tests can drive time by hand.

Two clocks, never subtracted from one another (STYLE.md section 4):
- `perf_ns`: `time.perf_counter_ns`, monotonic, for every interval inside one process;
- `wall_ns`: `time.time_ns`, the wall clock, read to anchor an event so that processes (and nodes)
  can line their events up.

`SYSTEM_CLOCK` is the real one. `ManualClock` is the fake: it stands still until `advance` moves
both readings by the same amount, so the pure cores and the shells can be tested without sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def perf_ns(self) -> int:
        """Monotonic nanoseconds (intervals inside this process)."""

    def wall_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch (anchors across processes and nodes)."""


class SystemClock:
    """The process's real clocks. Its methods are the `time` functions themselves, so a read costs
    no more than calling `time` directly."""

    perf_ns = staticmethod(time.perf_counter_ns)
    wall_ns = staticmethod(time.time_ns)


SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when told to: `advance(ns)` moves both readings alike."""

    def __init__(self, perf_ns: int = 1_000_000_000, wall_ns: int = 1_700_000_000_000_000_000) -> None:
        self._perf_ns = perf_ns
        self._wall_ns = wall_ns

    def perf_ns(self) -> int:
        return self._perf_ns

    def wall_ns(self) -> int:
        return self._wall_ns

    def advance(self, ns: int) -> None:
        if ns < 0:
            raise ValueError(f"a clock cannot go back ({ns} ns)")
        self._perf_ns += ns
        self._wall_ns += ns
