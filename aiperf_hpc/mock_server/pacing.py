"""Sleeping until absolute deadlines on the high-resolution monotonic clock.

Deadlines are `time.perf_counter()` seconds rather than `loop.time()`: uvloop's loop clock and timers
have millisecond granularity and a timer can fire up to about a millisecond before the requested real
time. The mock's latencies are lower bounds that client tests rely on, so a wake-up that comes early
sleeps again; it never returns before the deadline, and it is late by at most about a millisecond.
"""

from __future__ import annotations

import asyncio
import time

# uvloop rounds a delay to whole milliseconds, so a shorter re-sleep would spin through the loop.
_MIN_RESLEEP_S = 0.001


async def sleep_until(deadline_s: float) -> None:
    """Return once `time.perf_counter() >= deadline_s`; returns at once if it already is."""
    floor_s = 0.0
    while True:
        remaining_s = deadline_s - time.perf_counter()
        if remaining_s <= 0:
            return
        await asyncio.sleep(max(remaining_s, floor_s))
        floor_s = _MIN_RESLEEP_S
