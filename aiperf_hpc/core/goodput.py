"""Goodput: which successful requests meet every service level objective (SLO) of `--goodput`.

The spec is AIPerf's: space-separated `name:value` pairs, e.g.
`"time_to_first_token:200 inter_token_latency:20 request_latency:3000"`. Latency values are in ms
and are ceilings (good when the request's value is <= the SLO); `output_token_throughput_per_user`
is in tokens/s and is a floor (good when >= the SLO). A request that lacks a metric named in the
spec (no TTFT because it did not stream, no ITL with one output token) is not good: an SLO that
cannot be checked is not met.

Pure: parsing and counting on values, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt

from aiperf_hpc.errors import UsageError

Bound = Literal["ceiling", "floor"]

# Per-request metric -> how its SLO bounds it. Names are those of `core.metrics.METRIC_UNITS`.
GOODPUT_METRICS: dict[str, Bound] = {
    "time_to_first_token": "ceiling",
    "time_to_second_token": "ceiling",
    "inter_token_latency": "ceiling",
    "request_latency": "ceiling",
    "time_to_first_token_from_intended": "ceiling",
    "request_latency_from_intended": "ceiling",
    "output_token_throughput_per_user": "floor",
}


def parse_goodput_spec(spec: str) -> dict[str, float]:
    """Parse a `--goodput` spec into `{metric name: SLO}`, in the order given.

    Pairs are separated by whitespace (commas are accepted too). Raises UsageError, with one line
    naming the bad part, for an empty spec, a pair that is not `name:value`, an unknown metric, a
    value that is not a finite number > 0, or a metric named twice.
    """
    parts = spec.replace(",", " ").split()
    if not parts:
        raise UsageError("--goodput is empty: expected pairs like 'time_to_first_token:200 request_latency:3000'")
    slos: dict[str, float] = {}
    for part in parts:
        name, sep, text = part.partition(":")
        if not sep or not name or not text:
            raise UsageError(f"--goodput: {part!r} is not name:value (e.g. time_to_first_token:200)")
        if name not in GOODPUT_METRICS:
            raise UsageError(f"--goodput: unknown metric {name!r} in {part!r}; known: {', '.join(GOODPUT_METRICS)}")
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--goodput: {part!r} has a value that is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"--goodput: {part!r} needs a value > 0")
        if name in slos:
            raise UsageError(f"--goodput: {name!r} is given twice")
        slos[name] = value
    return slos


def check_goodput_slos(slos: Mapping[str, float]) -> None:
    """Raise UsageError when `slos` (from config rather than `parse_goodput_spec`) names an unknown
    metric or has a value that is not a finite number > 0."""
    for name, value in slos.items():
        if name not in GOODPUT_METRICS:
            raise UsageError(f"--goodput: unknown metric {name!r}; known: {', '.join(GOODPUT_METRICS)}")
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"--goodput: {name}:{value} needs a value > 0")


def count_good(values: Mapping[str, npt.NDArray[np.float64]], slos: Mapping[str, float], size: int) -> int:
    """The number of requests meeting every SLO.

    `values` maps each metric named in `slos` to one value per request (all arrays of length
    `size`, aligned by request), NaN where the request has no such value. With no SLOs every
    request is good. Raises KeyError when `slos` names a metric missing from `values`.
    """
    good = np.ones(size, dtype=bool)
    for name, slo in slos.items():
        column = values[name]
        # NaN compares False both ways, so a missing value is never good.
        good &= column >= slo if GOODPUT_METRICS[name] == "floor" else column <= slo
    return int(np.count_nonzero(good))
