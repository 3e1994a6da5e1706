"""Soak: does the client's memory stay flat over a long run? N streamed requests against the zero-work mock.

    .venv/bin/python -m benchmarks.soak                  # 1,000,000 requests (about 10 minutes here)
    .venv/bin/python -m benchmarks.soak --quick          # 50,000 requests
    .venv/bin/python benchmarks/run.py --only soak       # as a row of the report (never run by default)

aiperf-hpc runs `--request-count N --concurrency 64 --osl 16` against the zero-work mock
(`MockServerConfig(zero_work=True)`, as `aiperf-hpc mock-server --zero-work`). Every second the RSS
and PSS of the CLI and all its descendants are read from /proc (`procs.tree_memory_bytes`) and the
progress is the number of lines in `records.jsonl` so far. The memory at each 10% of progress is the
first sample at or past it; 100% is the last sample before every record was in (after it the
records service post-processes, which is a different, bounded, footprint: reported as the peak).
Growth is memory at 100% minus memory at 20%: start-up and the first connections are done by 20%,
so what grows after it grows with the number of requests.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.ours import profile_argv  # noqa: E402
from benchmarks.procs import MockServer, raise_open_file_limit, stop_group, tree_memory_bytes  # noqa: E402
from benchmarks.report import Line, RowResult  # noqa: E402
from benchmarks.runs import Load  # noqa: E402

DEFAULT_REQUESTS = 1_000_000
QUICK_REQUESTS = 50_000
CONCURRENCY = 64
SAMPLE_INTERVAL_S = 1.0
MIN_RATE_PER_S = 200.0  # the run's bound: N / this + a margin; far below what the client reaches


@dataclass(frozen=True)
class Sample:
    elapsed_s: float
    done: int  # records written so far
    rss_bytes: int
    pss_bytes: int


@dataclass(frozen=True)
class SoakResult:
    requests: int
    returncode: int
    wall_s: float
    samples: list[Sample]
    log_path: Path

    def at_progress(self) -> dict[int, Sample]:
        """Percent (10, 20, ..., 100) -> the sample for it (see the module docstring)."""
        running = [s for s in self.samples if s.done < self.requests]
        points: dict[int, Sample] = {}
        for percent in range(10, 101, 10):
            if percent == 100:
                if running:
                    points[100] = running[-1]
                continue
            reached = next((s for s in self.samples if s.done * 100 >= percent * self.requests), None)
            if reached is not None:
                points[percent] = reached
        return points

    def growth_bytes(self) -> tuple[int, int] | None:
        """(RSS, PSS) growth from 20% to 100%; None when either point is missing."""
        points = self.at_progress()
        if 20 not in points or 100 not in points:
            return None
        return points[100].rss_bytes - points[20].rss_bytes, points[100].pss_bytes - points[20].pss_bytes

    def end_s(self) -> float | None:
        """Seconds from the first sample with every record in to the CLI's exit: post-processing,
        the exports and the shutdown (to within a sample interval); None when that sample is missing."""
        done = next((s for s in self.samples if s.done >= self.requests), None)
        return None if done is None else self.wall_s - done.elapsed_s

    def peak_bytes(self) -> tuple[int, int]:
        return max((s.rss_bytes for s in self.samples), default=0), max((s.pss_bytes for s in self.samples), default=0)


def run_soak(requests: int, out_dir: Path) -> SoakResult:
    """Run the soak; the CLI's logs and exports go under `out_dir`. Raises OSError or RuntimeError
    when the mock server or the CLI cannot be started."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with MockServer({"zero_work": True}, out_dir / "mock.log") as server:
        load = Load(server.url, request_count=requests, osl=16, concurrency=CONCURRENCY)
        artifact_dir = out_dir / "artifacts"
        return _run_sampled(profile_argv(load, artifact_dir), artifact_dir / "records.jsonl", requests, out_dir)


def _run_sampled(argv: list[str], records_path: Path, requests: int, out_dir: Path) -> SoakResult:
    log_path = out_dir / "log.txt"
    timeout_s = requests / MIN_RATE_PER_S + 120.0
    samples: list[Sample] = []
    counter = _LineCounter(records_path)
    with log_path.open("wb") as log:
        started_s = time.perf_counter()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=raise_open_file_limit,
        )
        try:
            while True:
                rss, pss = tree_memory_bytes(process.pid)
                elapsed_s = time.perf_counter() - started_s
                samples.append(Sample(elapsed_s, counter.count(), rss, pss))
                if elapsed_s > timeout_s:
                    raise RuntimeError(f"the soak did not end within {timeout_s:.0f} s (log {log_path})")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=SAMPLE_INTERVAL_S)
                    break
        finally:
            if process.poll() is None:
                stop_group(process)
    return SoakResult(requests, process.returncode, time.perf_counter() - started_s, samples, log_path)


class _LineCounter:
    """Lines of a growing file, reading only what was appended since the last count."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._lines = 0

    def count(self) -> int:
        try:
            with self._path.open("rb") as file:
                file.seek(self._offset)
                while chunk := file.read(1 << 20):
                    self._lines += chunk.count(b"\n")
                    self._offset += len(chunk)
        except FileNotFoundError:
            pass
        return self._lines


def report_lines(result: SoakResult) -> list[str]:
    """The soak as text: memory at each 10%, growth 20% -> 100%, peak."""
    lines = [f"soak: {result.requests:,} requests at c{CONCURRENCY}, zero-work mock, {result.wall_s:.0f} s"]
    for percent, sample in result.at_progress().items():
        lines.append(
            f"{percent:>3}% ({sample.done:,} requests, {sample.elapsed_s:.0f} s):"
            f" RSS {sample.rss_bytes / 1e6:.1f} MB, PSS {sample.pss_bytes / 1e6:.1f} MB"
        )
    growth = result.growth_bytes()
    if growth is not None:
        span = result.at_progress()[100].done - result.at_progress()[20].done
        lines.append(
            f"growth 20% -> 100% ({span:,} requests): RSS {growth[0] / 1e6:+.1f} MB, PSS {growth[1] / 1e6:+.1f} MB"
            f" ({growth[1] / max(span, 1) * 1e5 / 1e6:+.2f} MB PSS per 100,000 requests)"
        )
    rss, pss = result.peak_bytes()
    lines.append(f"peak (post-processing included): RSS {rss / 1e6:.0f} MB, PSS {pss / 1e6:.0f} MB")
    end_s = result.end_s()
    if end_s is not None:
        lines.append(f"from every record in to exit: {end_s:.1f} s (sampled every {SAMPLE_INTERVAL_S:g} s)")
    return lines


def row_soak(quick: bool, raw_dir: Path) -> RowResult:
    """The soak as a row of `benchmarks/run.py`'s report (`--only soak`): one run, whatever --runs."""
    requests = QUICK_REQUESTS if quick else DEFAULT_REQUESTS
    row = RowResult("soak", f"Memory over {requests:,} streamed requests")
    result = run_soak(requests, raw_dir / "soak")
    growth = result.growth_bytes()
    ours = "n/a" if growth is None else f"RSS {growth[0] / 1e6:+.1f} MB, PSS {growth[1] / 1e6:+.1f} MB"
    row.lines.append(
        Line(f"memory growth from 20% to 100% of {requests:,} requests, c{CONCURRENCY}", ours, "-", "flat", None)
    )
    row.notes += report_lines(result)
    if result.returncode != 0:
        row.notes.append(f"aiperf-hpc exited with code {result.returncode}; log {result.log_path}")
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, help=f"requests (default {DEFAULT_REQUESTS:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REQUESTS:,} requests")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "artifacts" / "bench" / "soak")
    args = parser.parse_args(argv)
    requests = args.requests or (QUICK_REQUESTS if args.quick else DEFAULT_REQUESTS)
    if requests < 10:
        parser.error("--requests must be at least 10")
    result = run_soak(requests, args.out / time.strftime("%Y%m%d-%H%M%S"))
    print("\n".join(report_lines(result)))
    if result.returncode != 0:
        print(f"soak: aiperf-hpc exited with code {result.returncode}; log {result.log_path}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
