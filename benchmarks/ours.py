"""Running aiperf-hpc itself (`python -m aiperf_hpc.cli profile`) and reading what it measured.

Figures come from its own exports: `profile_export.json` (run-level figures and metric percentiles)
and `records.jsonl` (the earliest `started_wall_ns`, for the time from process start to first send).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from benchmarks.procs import run_bounded
from benchmarks.runs import OURS, Figures, Load, ToolRun, failure_note, new_run

MODEL = "mock-model"


def profile_argv(load: Load, artifact_dir: Path) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "aiperf_hpc.cli",
        "profile",
        "--model",
        MODEL,
        "--url",
        load.url,
        "--streaming",
        "--request-count",
        str(load.request_count),
        "--osl",
        str(load.osl),
        "--isl",
        str(load.isl),
        "--artifact-dir",
        str(artifact_dir),
    ]
    if load.concurrency is not None:
        argv += ["--concurrency", str(load.concurrency)]
    if load.rate_per_s is not None:
        argv += ["--request-rate", str(load.rate_per_s), "--request-rate-mode", "constant"]
    if load.workers is not None:
        argv += ["--workers", str(load.workers)]
    return argv


def run_ours(load: Load, run_dir: Path, round_index: int, sample_memory: bool = False) -> ToolRun:
    """Profile `load` with aiperf-hpc; the run is failed when the CLI fails or any request errs."""
    artifact_dir = run_dir / "artifacts"
    done = run_bounded(
        profile_argv(load, artifact_dir), run_dir / "log.txt", load.timeout_s, sample_memory=sample_memory
    )
    result = new_run(OURS, round_index, done, run_dir)
    figures = result.figures
    if done.returncode != 0 or done.timed_out:
        result.note = failure_note(done, OURS)
        return result
    try:
        document = orjson.loads((artifact_dir / "profile_export.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        result.note = f"no readable profile_export.json: {exc}"
        return result
    figures.update(export_figures(document))
    first_ns = first_started_wall_ns(artifact_dir / "records.jsonl")
    if first_ns is not None:
        figures["first_request_s"] = (first_ns - done.spawn_wall_ns) / 1e9
    errors = (figures.get("error_count") or 0) + (figures.get("lost_count") or 0)
    result.ok = errors == 0
    if errors:
        result.note = f"{errors:.0f} requests failed: {document.get('errors_by_type')}"
    return result


def export_figures(document: dict[str, Any]) -> Figures:
    """The figures the benchmarks use from a `profile_export.json` document."""
    run = document.get("run", {})
    metrics = document.get("metrics", {})
    figures: Figures = {
        name: _number(run.get(name))
        for name in (
            "request_throughput",
            "achieved_request_rate",
            "request_count",
            "success_count",
            "error_count",
            "lost_count",
            "benchmark_duration_s",
        )
    }
    for metric, prefix in (
        ("time_to_first_token", "ttft"),
        ("inter_token_latency", "itl"),
        ("send_lag", "send_lag"),
    ):
        stats = metrics.get(metric, {})
        figures[f"{prefix}_p50_ms"] = _number(stats.get("p50"))
        figures[f"{prefix}_p99_ms"] = _number(stats.get("p99"))
    return figures


def first_started_wall_ns(records_path: Path) -> int | None:
    """The earliest `started_wall_ns` of `records.jsonl`, None when there is no record."""
    earliest: int | None = None
    try:
        lines = records_path.read_bytes().splitlines()
    except OSError:
        return None
    for line in lines:
        if not line.strip():
            continue
        try:
            value = orjson.loads(line).get("started_wall_ns")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, int) and (earliest is None or value < earliest):
            earliest = value
    return earliest


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
