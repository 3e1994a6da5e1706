"""Arrival schedules: when the k-th request of a phase is due, as an offset from the phase start.

Pure and deterministic: the offsets depend only on the rate, the mode, the ramp and the seed — never
on how many workers or nodes send the requests, or on how fast they do it. The timing manager turns
an offset into an absolute wall-clock deadline once, at the phase start, so lateness never adds up.

Modes (vLLM's meanings): `constant` sends every 1/rate s; `poisson` draws exponential gaps; `gamma`
draws gamma gaps of shape `burstiness` (1 is Poisson, lower is burstier, higher is more regular)
and mean 1/rate. The first request is due at offset 0.

A linear ramp (`ramp_up_duration_s`) raises the rate from 0 to its target over the ramp: the gaps
are drawn at the target rate in "operational time" tau, and mapped to real time through the
inverse of the expected arrival count, t = sqrt(2 * ramp * tau) while tau < ramp / 2, then
tau + ramp / 2 (time rescaling keeps the process's shape, only stretching its start).
"""

from __future__ import annotations

import math

import numpy as np

from aiperf_hpc.config import RequestRateMode

_BLOCK = 4096  # gaps are drawn in blocks of this size; fixed, so the stream never depends on use


class ArrivalSchedule:
    """Offsets (ns) of successive arrivals of one phase; `offset_ns(k)` for k = 0, 1, 2, ... in order."""

    def __init__(
        self,
        *,
        rate: float,
        mode: RequestRateMode,
        burstiness: float = 1.0,
        ramp_up_s: float = 0.0,
        seed: int = 0,
        stream: int = 0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if burstiness <= 0:
            raise ValueError(f"burstiness must be positive, got {burstiness}")
        self._rate = rate
        self._mode = mode
        self._burstiness = burstiness
        self._ramp_s = ramp_up_s
        self._rng = np.random.default_rng([seed, stream])
        self._tau_s: list[float] = [0.0]  # operational time of each arrival so far

    def offset_ns(self, k: int) -> int:
        """Offset of arrival k from the phase start. Arrivals must be asked for in increasing order
        or repeated (the schedule is cached), never skipped far ahead (it is generated in order)."""
        while k >= len(self._tau_s):
            self._extend()
        return round(self._real_time_s(self._tau_s[k]) * 1e9)

    def _extend(self) -> None:
        if self._mode == "constant":  # k / rate, free of the rounding a running sum would add up
            first = len(self._tau_s)
            self._tau_s.extend((np.arange(first, first + _BLOCK) / self._rate).tolist())
            return
        last = self._tau_s[-1]
        self._tau_s.extend((last + np.cumsum(self._draw_gaps(_BLOCK))).tolist())

    def _draw_gaps(self, n: int) -> np.ndarray:
        mean_s = 1.0 / self._rate
        if self._mode == "poisson":
            return self._rng.exponential(mean_s, n)
        return self._rng.gamma(self._burstiness, mean_s / self._burstiness, n)

    def _real_time_s(self, tau_s: float) -> float:
        ramp = self._ramp_s
        if ramp <= 0:
            return tau_s
        if tau_s < ramp / 2:
            return math.sqrt(2.0 * ramp * tau_s)
        return tau_s + ramp / 2


def ramped_concurrency(target: int, ramp_up_s: float, elapsed_s: float) -> int:
    """The concurrency cap `elapsed_s` into a linear ramp to `target` over `ramp_up_s` (at least 1)."""
    if ramp_up_s <= 0 or elapsed_s >= ramp_up_s:
        return target
    return max(1, min(target, math.ceil(target * elapsed_s / ramp_up_s)))


def fixed_schedule_offsets_ns(
    timestamps_ms: list[float],
    *,
    start_offset_ms: float | None = None,
    end_offset_ms: float | None = None,
    speedup: float = 1.0,
) -> list[tuple[int, int]]:
    """Trace replay: `(position in timestamps_ms, offset_ns)` for each timestamp inside the window
    [start_offset, end_offset] (ms, inclusive), in time order, relative to the window's start (or the
    first kept timestamp when no start offset is given), divided by `speedup`."""
    kept = [
        (i, t)
        for i, t in enumerate(timestamps_ms)
        if (start_offset_ms is None or t >= start_offset_ms) and (end_offset_ms is None or t <= end_offset_ms)
    ]
    kept.sort(key=lambda item: (item[1], item[0]))
    if not kept:
        return []
    origin_ms = start_offset_ms if start_offset_ms is not None else kept[0][1]
    return [(i, round((t - origin_ms) / speedup * 1e6)) for i, t in kept]
