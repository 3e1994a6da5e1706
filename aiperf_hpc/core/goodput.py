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

import numpy as np
import numpy.typing as npt

from aiperf_hpc.errors import UsageError
from aiperf_hpc.option_spec import GOODPUT_METRICS


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
