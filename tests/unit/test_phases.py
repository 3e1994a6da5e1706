from __future__ import annotations

from aiperf_hpc.config import LoadConfig
from aiperf_hpc.core.phases import PhasePlan, plan_phases


def test_warmup_comes_first_only_when_asked_for() -> None:
    assert [p.name for p in plan_phases(LoadConfig(concurrency=2, request_count=5))] == ["profiling"]
    phases = plan_phases(LoadConfig(concurrency=2, request_count=5, warmup_request_count=3))
    assert [(p.name, p.request_count) for p in phases] == [("warmup", 3), ("profiling", 5)]
    by_time = plan_phases(LoadConfig(request_rate=5.0, warmup_duration_s=2.0))
    assert (by_time[0].name, by_time[0].request_count, by_time[0].duration_ns) == ("warmup", None, 2_000_000_000)
    assert by_time[0].rate == by_time[1].rate == 5.0


def test_default_request_count_scales_with_the_cap() -> None:
    assert plan_phases(LoadConfig())[-1].request_count == 10
    assert plan_phases(LoadConfig(concurrency=8))[-1].request_count == 80
    assert plan_phases(LoadConfig(fixed_schedule=True))[-1].request_count is None


def test_count_bounded_phase() -> None:
    phase = PhasePlan("profiling", request_count=3, duration_ns=None, max_in_flight=2)
    assert not phase.finished_issuing(issued=2, elapsed_ns=10**12, next_due_ns=None)
    assert phase.finished_issuing(issued=3, elapsed_ns=0, next_due_ns=None)
    assert phase.cap(0) == 2


def test_duration_bounded_closed_loop_phase() -> None:
    phase = plan_phases(LoadConfig(concurrency=4, benchmark_duration_s=2.0))[-1]
    assert phase.request_count is None
    assert not phase.finished_issuing(issued=10**6, elapsed_ns=1_999_999_999, next_due_ns=None)
    assert phase.finished_issuing(issued=0, elapsed_ns=2_000_000_000, next_due_ns=None)


def test_a_scheduled_arrival_after_the_duration_is_not_sent() -> None:
    phase = plan_phases(LoadConfig(request_rate=10.0, benchmark_duration_s=1.0))[-1]
    assert not phase.finished_issuing(issued=5, elapsed_ns=0, next_due_ns=999_999_999)
    assert phase.finished_issuing(issued=5, elapsed_ns=0, next_due_ns=1_000_000_000)


def test_caps_by_mode() -> None:
    assert plan_phases(LoadConfig(request_rate=10.0))[-1].cap(0) is None
    assert plan_phases(LoadConfig(request_rate=10.0, concurrency=3))[-1].cap(0) == 3
    ramped = plan_phases(LoadConfig(concurrency=10, ramp_up_duration_s=10.0))[-1]
    assert [ramped.cap(int(t * 1e9)) for t in (0.0, 5.0, 10.0)] == [1, 5, 10]
    rate_ramp = plan_phases(LoadConfig(request_rate=10.0, concurrency=10, ramp_up_duration_s=10.0))[-1]
    assert rate_ramp.cap(0) == 10  # with a rate the ramp shapes the arrivals, not the cap
