"""The progress views on an in-memory console: what each `--ui` mode prints, and when."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from aiperf_hpc.config import EndpointConfig, LoadConfig, RunConfig
from aiperf_hpc.core.live_stats import LiveAggregator, LiveStatus
from aiperf_hpc.live.view import (
    SIMPLE_EVERY,
    LiveView,
    QuietView,
    RunPlan,
    SimpleView,
    make_view,
    progress_line,
)
from tests.unit.test_live_stats import S, record, success

COUNT_PLAN = RunPlan(request_count=8, duration_s=None, warmup=False)


def status(*, requests: int = 2, nodes: dict[str, int] | None = None) -> LiveStatus:
    live = LiveAggregator()
    live.snapshot(now_ns=0)
    live.add([success(i, ttft_ms=10, latency_ms=50, output_tokens=5) for i in range(requests)], now_ns=S)
    live.add([record(100, error_type="timeout")], now_ns=S)
    return LiveStatus(
        stats=live.snapshot(now_ns=2 * S), in_flight=4, workers_alive=2, workers_by_node=nodes or {"n0": 2}
    )


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False, color_system=None), out


def test_the_progress_line_has_every_figure() -> None:
    line = progress_line(status(requests=3), COUNT_PLAN)
    assert line == (
        "4/8 requests (50%), 4 in flight, 1 errors, 2.0 req/s, 7.5 tok/s, TTFT p50/p99 10.0/10.0 ms, "
        "ITL p50/p99 10.0/10.0 ms, latency p50/p99 50.0/50.0 ms, 2 workers"
    )


def test_workers_are_shown_by_node_across_nodes() -> None:
    line = progress_line(status(nodes={"a": 2, "b": 1}), COUNT_PLAN)
    assert line.endswith("2 workers (a 2, b 1)")


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (RunPlan(request_count=None, duration_s=60.0, warmup=False), "1/60 s, 3 requests"),
        (RunPlan(request_count=None, duration_s=None, warmup=False), "3 requests"),
    ],
)
def test_a_duration_or_an_open_end_shows_what_is_known(plan: RunPlan, expected: str) -> None:
    assert progress_line(status(), plan).startswith(expected + ", ")


def test_warmup_shows_its_own_count_until_profiling_records_arrive() -> None:
    live = LiveAggregator()
    live.add([record(0, phase="warmup"), record(1, phase="warmup")], now_ns=0)
    warming = LiveStatus(stats=live.snapshot(now_ns=0), in_flight=None, workers_alive=None, workers_by_node={})
    assert progress_line(warming, RunPlan(8, None, warmup=True)).startswith("warmup: 2 requests, 0 errors")


def test_the_plan_comes_from_the_config() -> None:
    endpoint = EndpointConfig(model="m")
    assert RunPlan.of(RunConfig(endpoint=endpoint, load=LoadConfig(request_count=50))) == RunPlan(50, None, False)
    timed = RunConfig(endpoint=endpoint, load=LoadConfig(benchmark_duration_s=30, warmup_request_count=5))
    assert RunPlan.of(timed) == RunPlan(None, 30.0, True)


def test_simple_prints_every_few_updates_and_a_last_line() -> None:
    target, out = console()
    view = SimpleView(target, COUNT_PLAN)
    for _ in range(SIMPLE_EVERY - 1):
        view.update(status())
    assert out.getvalue() == ""
    view.update(status())
    assert out.getvalue().splitlines() == ["aiperf-hpc: " + progress_line(status(), COUNT_PLAN)]
    view.close(status())
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("aiperf-hpc: done: 3/8 requests (37%), 1 errors")  # no stale in-flight count


def test_none_prints_notes_but_no_progress() -> None:
    target, out = console()
    view = QuietView(target, COUNT_PLAN)
    for _ in range(2 * SIMPLE_EVERY):
        view.update(status())
    view.close(status())
    view.note("worker worker-1 lost")
    assert out.getvalue() == "aiperf-hpc: worker worker-1 lost\n"


def test_live_draws_the_bar_and_leaves_the_last_figures() -> None:
    out = io.StringIO()
    view = LiveView(Console(file=out, width=120, force_terminal=True, color_system=None), COUNT_PLAN)
    view.update(status())
    view.close(status(requests=7))
    text = out.getvalue()
    assert "profiling" in text and "ETA" in text
    assert "8/8 requests" in text and "TTFT p50/p99 10.0/10.0 ms" in text


def test_a_run_too_short_for_any_update_still_shows_its_figures_live() -> None:
    out = io.StringIO()
    view = LiveView(Console(file=out, width=120, force_terminal=True, color_system=None), COUNT_PLAN)
    view.close(status())
    assert "3/8 requests" in out.getvalue()


@pytest.mark.parametrize(("terminal", "expected"), [(True, LiveView), (False, SimpleView)])
def test_auto_is_live_on_a_terminal_and_simple_elsewhere(terminal: bool, expected: type[QuietView]) -> None:
    target = Console(file=io.StringIO(), force_terminal=terminal)
    assert type(make_view("auto", COUNT_PLAN, target)) is expected
    assert type(make_view("none", COUNT_PLAN, target)) is QuietView
