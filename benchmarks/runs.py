"""What one tool run is asked to do (`Load`) and what it measured (`ToolRun`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.procs import Completed

OURS = "aiperf-hpc"
WRK = "wrk"
AIPERF = "AIPerf 0.13.0"
VLLM = "vllm bench serve"

Figures = dict[str, float | None]


@dataclass(frozen=True)
class Load:
    """One load against one server: streamed chat requests of `isl` prompt and `osl` output tokens,
    closed-loop at `concurrency` or open-loop at a constant `rate_per_s` (then `concurrency` is a cap,
    None for none). `workers` None leaves the tool's default."""

    url: str
    request_count: int
    osl: int
    isl: int = 32
    concurrency: int | None = None
    rate_per_s: float | None = None
    workers: int | None = None
    timeout_s: float = 120.0


@dataclass
class ToolRun:
    """One run of one tool. `figures` holds what it measured (None: not measured or not parseable);
    `ok` is False when the run failed, timed out or reported errors, and `note` says why."""

    tool: str
    round: int
    ok: bool
    figures: Figures = field(default_factory=dict)
    note: str = ""
    run_dir: str = ""
    spawn_monotonic_s: float | None = None


def new_run(tool: str, round_index: int, done: Completed, run_dir: Path) -> ToolRun:
    """A not-yet-ok run of `tool` holding what every run has: wall time, peak memory when sampled
    (MB) and the spawn time on the monotonic clock."""
    figures: Figures = {"wall_s": done.wall_s}
    if done.peak_rss_bytes is not None:
        figures["peak_rss_mb"] = done.peak_rss_bytes / 1e6
    if done.peak_pss_bytes is not None:
        figures["peak_pss_mb"] = done.peak_pss_bytes / 1e6
    return ToolRun(
        tool, round_index, ok=False, figures=figures, run_dir=str(run_dir), spawn_monotonic_s=done.spawn_monotonic_s
    )


def failure_note(done: Completed, what: str) -> str:
    """A one-paragraph reason for a failed run, with the tail of its log."""
    reason = f"timed out after {done.wall_s:.0f} s" if done.timed_out else f"exited with code {done.returncode}"
    tail = done.log_tail(8).strip()
    return f"{what} {reason} (log {done.log_path})" + (f": {tail[-600:]}" if tail else "")


def run_dir_name(tool: str, label: str, round_index: int) -> Path:
    slug = "".join(ch if ch.isalnum() else "-" for ch in tool.lower()).strip("-")
    return Path(f"{label}/{slug}-r{round_index}")
