"""When a silent worker counts as lost: the worker manager's heartbeat rule, without a clock.

Pure. Times are perf-clock nanoseconds (`Clock.perf_ns`) of the worker manager's process. A worker
is lost once more than `HEARTBEAT_LOSS_S` passed since it was last seen. Before its first heartbeat
it counts as seen at `first_seen_ns`, so it has the whole start timeout for that first one.
"""

from __future__ import annotations

HEARTBEAT_LOSS_S = 10.0
_HEARTBEAT_LOSS_NS = round(HEARTBEAT_LOSS_S * 1e9)


def first_seen_ns(configured_ns: int, start_timeout_s: float) -> int:
    """When a worker that has not sent a heartbeat yet counts as last seen, given when the workers
    were configured: lost once `start_timeout_s` has passed since then."""
    return configured_ns + round(start_timeout_s * 1e9) - _HEARTBEAT_LOSS_NS


def heartbeat_lost(seen_ns: int, now_ns: int) -> bool:
    """True when a worker last seen at `seen_ns` has been silent too long at `now_ns`."""
    return now_ns - seen_ns > _HEARTBEAT_LOSS_NS
