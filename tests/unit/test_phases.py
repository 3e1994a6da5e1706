from __future__ import annotations

from aiperf_hpc.config import LoadConfig
from aiperf_hpc.core.phases import PhasePlan, plan_phases


def test_warmup_comes_first_only_when_asked_for() -> None:
    assert [p.name for p in plan_phases(LoadConfig(concurrency=2, request_count=5))] == ["profiling"]
    phases = plan_phases(LoadConfig(concurrency=2, request_count=5, warmup_request_count=3))
    assert [(p.name, p.request_count) for p in phases] == [("warmup", 3), ("profiling", 5)]


def test_default_request_count_scales_with_concurrency() -> None:
    assert plan_phases(LoadConfig(concurrency=1))[-1].request_count == 10
    assert plan_phases(LoadConfig(concurrency=8))[-1].request_count == 80


def test_count_bounded_phase() -> None:
    phase = PhasePlan("profiling", concurrency=2, request_count=3, duration_ns=None)
    assert phase.may_issue(issued=0, outstanding=0, started_ns=0, now_ns=0)
    assert not phase.may_issue(issued=2, outstanding=2, started_ns=0, now_ns=0)  # at concurrency
    assert phase.may_issue(issued=2, outstanding=1, started_ns=0, now_ns=0)
    assert phase.finished_issuing(issued=3, started_ns=0, now_ns=0)
    assert phase.issue_deadline_ns(100) is None


def test_duration_bounded_phase() -> None:
    phase = plan_phases(LoadConfig(concurrency=4, benchmark_duration_s=2.0))[-1]
    assert phase.request_count is None
    assert phase.issue_deadline_ns(1_000) == 1_000 + 2_000_000_000
    assert not phase.finished_issuing(issued=10**6, started_ns=0, now_ns=1_999_999_999)
    assert phase.finished_issuing(issued=0, started_ns=0, now_ns=2_000_000_000)
