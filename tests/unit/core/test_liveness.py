"""The heartbeat-loss rule of the worker manager, on a manual clock."""

from __future__ import annotations

from aiperf_hpc.core.liveness import HEARTBEAT_LOSS_S, first_seen_ns, heartbeat_lost
from aiperf_hpc.runtime.clock import ManualClock

S = 1_000_000_000


def test_a_worker_is_lost_only_after_more_than_the_limit_without_a_heartbeat() -> None:
    clock = ManualClock()
    seen_ns = clock.perf_ns()
    clock.advance(int(HEARTBEAT_LOSS_S * S))
    assert not heartbeat_lost(seen_ns, clock.perf_ns())  # exactly the limit: not yet
    clock.advance(1)
    assert heartbeat_lost(seen_ns, clock.perf_ns())


def test_a_new_worker_has_the_whole_start_timeout_for_its_first_heartbeat() -> None:
    clock = ManualClock()
    seen_ns = first_seen_ns(clock.perf_ns(), start_timeout_s=60.0)
    clock.advance(60 * S)
    assert not heartbeat_lost(seen_ns, clock.perf_ns())
    clock.advance(1)
    assert heartbeat_lost(seen_ns, clock.perf_ns())


def test_a_start_timeout_shorter_than_the_limit_still_counts_from_configuration() -> None:
    clock = ManualClock()
    seen_ns = first_seen_ns(clock.perf_ns(), start_timeout_s=4.0)
    clock.advance(4 * S + 1)
    assert heartbeat_lost(seen_ns, clock.perf_ns())
