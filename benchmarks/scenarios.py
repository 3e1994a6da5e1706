"""The rows of issue 5's table, each a function that starts its mock server, runs the tools in
alternation and returns a `RowResult`.

Alternation: round r runs every tool once, the order rotated by r, so drift on a shared machine hits
all tools alike. Before each run the mock's counters are reset; after it, the mock's truth (requests
seen, maximum in flight, the TTFT and ITL percentiles it really produced, and where asked the arrival
times) is added to the run's figures as `server_*`. The mock paces token k to `arrival + ttft + k *
itl` but runs late when its CPU is busy, so the truth for TTFT and ITL is what it actually did
(`actual_ttft_ms`, `actual_itl_ms` of /mock/stats: handler start to the write of the first token, and
the per-token gap between the writes of the first and the last), and error = the client's percentile
- the mock's actual percentile of the same run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from benchmarks.ours import run_ours
from benchmarks.peers import Peers, run_aiperf, run_vllm, run_wrk
from benchmarks.procs import MockServer, run_bounded
from benchmarks.records_1m import RECORD_COUNT, ensure_records_file
from benchmarks.report import Line, RowResult, failure_of, fmt, median_figures, median_or_none
from benchmarks.runs import AIPERF, OURS, VLLM, WRK, Figures, Load, ToolRun, run_dir_name
from benchmarks.soak import row_soak

RunMaker = Callable[[int, Path], ToolRun]
"""Runs one tool once: (round index, run directory) -> the run."""

ZERO_WORK: dict[str, Any] = {"zero_work": True}
ZERO_LATENCY: dict[str, Any] = {}
STREAMS_WORKERS = 4
SCALING_WORKERS = (1, 2, 4)


@dataclass(frozen=True)
class Bench:
    """What every row needs: how many runs, quick or full sizes, where raw runs go, the peers."""

    runs: int
    quick: bool
    raw_dir: Path
    cache_dir: Path
    repo_root: Path
    peers: Peers

    def size(self, quick: int, full: int) -> int:
        return quick if self.quick else full


# --- shared machinery -----------------------------------------------------------------------------


def tool_makers(
    bench: Bench, load: Load, tools: tuple[str, ...], sample_memory: bool = False
) -> list[tuple[str, RunMaker]]:
    """The makers of the `tools` asked for that exist here (wrk, AIPerf and vLLM may be missing)."""
    peers = bench.peers
    makers: list[tuple[str, RunMaker]] = []
    for tool in tools:
        if tool == OURS:
            makers.append((tool, partial(_ours, load, sample_memory)))
        elif tool == WRK and peers.wrk is not None:
            makers.append((tool, partial(_wrk, peers.wrk, load, float(bench.size(2, 5)))))
        elif tool == AIPERF and peers.aiperf is not None and peers.tokenizer_dir is not None:
            makers.append((tool, partial(_aiperf, peers.aiperf, peers.tokenizer_dir, load, sample_memory)))
        elif tool == VLLM and peers.vllm_python is not None and peers.tokenizer_dir is not None:
            makers.append((tool, partial(_vllm, peers.vllm_python, peers.tokenizer_dir, load, sample_memory)))
    return makers


def _ours(load: Load, sample_memory: bool, round_index: int, run_dir: Path) -> ToolRun:
    return run_ours(load, run_dir, round_index, sample_memory)


def _ours_with_workers(load: Load, round_index: int, run_dir: Path) -> ToolRun:
    run = run_ours(load, run_dir, round_index)
    run.figures["workers"] = None if load.workers is None else float(load.workers)
    return run


def _wrk(wrk: str, load: Load, duration_s: float, round_index: int, run_dir: Path) -> ToolRun:
    return run_wrk(wrk, load, duration_s, run_dir, round_index)


def _aiperf(
    aiperf: Path, tokenizer_dir: Path, load: Load, sample_memory: bool, round_index: int, run_dir: Path
) -> ToolRun:
    return run_aiperf(aiperf, tokenizer_dir, load, run_dir, round_index, sample_memory)


def _vllm(
    python: Path, tokenizer_dir: Path, load: Load, sample_memory: bool, round_index: int, run_dir: Path
) -> ToolRun:
    return run_vllm(python, tokenizer_dir, load, run_dir, round_index, sample_memory)


def alternate(
    bench: Bench,
    label: str,
    server: MockServer,
    makers: list[tuple[str, RunMaker]],
    arrivals_of: int | None = None,
) -> list[ToolRun]:
    """`bench.runs` rounds of every maker, rotated per round, each with the server's truth added.
    With `arrivals_of`, the server-observed send rate over the last `arrivals_of` arrivals and the
    first arrival after the tool's start are added too."""
    runs: list[ToolRun] = []
    for round_index in range(bench.runs):
        shift = round_index % len(makers) if makers else 0
        for tool, make in makers[shift:] + makers[:shift]:
            server.reset()
            run = make(round_index, bench.raw_dir / run_dir_name(tool, label, round_index))
            run.figures.update(server_truth(server, run, arrivals_of))
            runs.append(run)
            print(f"bench: {label} r{round_index} {tool}: {_progress(run)}", flush=True)
    return runs


def server_truth(server: MockServer, run: ToolRun, arrivals_of: int | None) -> Figures:
    stats = server.get_json("/mock/stats")
    truth: Figures = {
        "server_requests": float(stats["requests_total"]),
        "server_max_in_flight": float(stats["max_in_flight"]),
    }
    for metric in ("ttft", "itl"):
        actual = stats.get(f"actual_{metric}_ms") or {}
        for stat in ("p50", "p99"):
            value = actual.get(stat)
            truth[f"server_{metric}_{stat}_ms"] = None if value is None else float(value)
    if arrivals_of is None:
        return truth
    arrivals_s = sorted(seen["arrival_s"] for seen in server.get_json("/mock/requests"))
    if arrivals_s and run.spawn_monotonic_s is not None:
        truth["server_first_arrival_s"] = arrivals_s[0] - run.spawn_monotonic_s
    window = arrivals_s[-arrivals_of:]
    if len(window) >= 2 and window[-1] > window[0]:
        truth["server_rate_per_s"] = (len(window) - 1) / (window[-1] - window[0])
    return truth


def _progress(run: ToolRun) -> str:
    if not run.ok:
        return "FAILED " + run.note[:300]
    shown = ("request_throughput", "ttft_p50_ms", "itl_p50_ms", "wall_s", "peak_rss_mb", "server_rate_per_s")
    return ", ".join(f"{name}={run.figures[name]:.4g}" for name in shown if run.figures.get(name) is not None)


def peers_text(
    medians: Mapping[str, Figures],
    runs: list[ToolRun],
    tools: tuple[str, ...],
    figure: str,
    render: Callable[[float], str],
    row: RowResult,
) -> str:
    """'wrk 8,012 · AIPerf 532' for the peers that ran; a failed one says so and its note goes to
    the row's notes."""
    parts = []
    for tool in tools:
        if tool not in medians:
            continue
        value = medians[tool].get(figure)
        if value is None:
            parts.append(f"{tool}: failed")
            row.notes.append(f"{tool} ({figure}): {failure_of(runs, tool)}")
        else:
            parts.append(f"{tool} {render(value)}")
    return " · ".join(parts) if parts else "n/a (no peer ran)"


def round_ratio(runs: list[ToolRun], figure: str, over: tuple[str, ...]) -> float | None:
    """Median over rounds of ours / max(the `over` tools), each ratio from one round's runs."""
    ratios: list[float | None] = []
    for round_index in sorted({run.round for run in runs}):
        in_round = [run for run in runs if run.round == round_index and run.ok]
        ours = next((run.figures.get(figure) for run in in_round if run.tool == OURS), None)
        others = [run.figures.get(figure) for run in in_round if run.tool in over]
        best = max((value for value in others if value is not None), default=None)
        ratios.append(ours / best if ours is not None and best else None)
    return median_or_none(ratios)


def all_ok(conditions: list[bool | None]) -> bool | None:
    known = [condition for condition in conditions if condition is not None]
    return all(known) if known else None


# --- the rows -------------------------------------------------------------------------------------


def row_throughput(bench: Bench) -> RowResult:
    row = RowResult("throughput", "Streamed req/s, 16 tokens, c64 and c256")
    count = bench.size(1500, 5000)
    tools = (OURS, WRK, AIPERF, VLLM)
    for server_label, config in (("zero-work mock", ZERO_WORK), ("mock, 0 latency", ZERO_LATENCY)):
        with MockServer(config, bench.raw_dir / f"mock-{_slug(server_label)}.log") as server:
            for concurrency in (64, 256):
                label = f"{_slug(server_label)}-c{concurrency}"
                load = Load(server.url, request_count=count, osl=16, concurrency=concurrency)
                runs = alternate(bench, label, server, tool_makers(bench, load, tools))
                medians = median_figures(runs)
                row.groups[label], row.medians[label] = runs, medians
                ours = medians.get(OURS, {}).get("request_throughput")
                wrk = medians.get(WRK, {}).get("request_throughput")
                peer_values = [medians.get(tool, {}).get("request_throughput") for tool in (AIPERF, VLLM)]
                fastest = max((value for value in peer_values if value is not None), default=None)
                met = all_ok(
                    [
                        None if ours is None or fastest is None else ours >= 1.5 * fastest,
                        None if ours is None or wrk is None else ours >= 0.5 * wrk,
                    ]
                )
                if ours is None:
                    met = False
                    row.notes.append(f"aiperf-hpc ({label}): {failure_of(runs, OURS)}")
                row.lines.append(
                    Line(
                        f"streamed req/s, 16 tokens, c{concurrency}, {server_label}",
                        fmt(ours),
                        peers_text(medians, runs, (WRK, AIPERF, VLLM), "request_throughput", fmt, row),
                        ">= 1.5x fastest peer, >= 50% of wrk",
                        met,
                    )
                )
                row.ratios[f"aiperf-hpc / fastest peer (AIPerf, vllm), {label}"] = round_ratio(
                    runs, "request_throughput", (AIPERF, VLLM)
                )
                row.ratios[f"aiperf-hpc / wrk, {label}"] = round_ratio(runs, "request_throughput", (WRK,))
    row.notes.append(f"{count:,} requests per client run; wrk runs for {bench.size(2, 5)} s per run")
    return row


def row_latency_error(bench: Bench) -> RowResult:
    row = RowResult("latency-error", "TTFT and ITL error vs server truth, c100, TTFT 50 ms, ITL 5 ms, 100 tokens")
    ttft_ms, itl_ms, osl = 50.0, 5.0, 100
    config = {"ttft_ms": ttft_ms, "itl_ms": itl_ms}
    count = bench.size(300, 1000)
    with MockServer(config, bench.raw_dir / "mock-latency.log") as server:
        load = Load(server.url, request_count=count, osl=osl, concurrency=100)
        label = "latency-c100"
        runs = alternate(bench, label, server, tool_makers(bench, load, (OURS, AIPERF, VLLM)))
    for run in runs:
        for figure, configured in (
            ("ttft_p50_ms", ttft_ms),
            ("ttft_p99_ms", ttft_ms),
            ("itl_p50_ms", itl_ms),
            ("itl_p99_ms", itl_ms),
        ):
            value, actual = run.figures.get(figure), run.figures.get(f"server_{figure}")
            error = None if value is None or actual is None else value - actual
            run.figures[figure.replace("_ms", "_error_ms")] = error
            vs_configured = None if value is None else value - configured
            run.figures[figure.replace("_ms", "_error_vs_configured_ms")] = vs_configured
    medians = median_figures(runs)
    row.groups[label], row.medians[label] = runs, medians
    row.truth = {"ttft_ms": ttft_ms, "itl_ms": itl_ms, "output_tokens": osl, "concurrency": 100}

    def ms(value: float) -> str:
        return fmt(value, "ms", 2, signed=True)

    for figure, name, limit in (
        ("ttft_p50_error_ms", "TTFT error vs truth, p50", 2.0),
        ("ttft_p99_error_ms", "TTFT error vs truth, p99", 10.0),
        ("itl_p50_error_ms", "ITL error vs truth, p50", 0.1),
        ("itl_p99_error_ms", "ITL error vs truth, p99", None),
    ):
        ours = medians.get(OURS, {}).get(figure)
        met = None if limit is None else (False if ours is None else abs(ours) <= limit)
        row.lines.append(
            Line(
                f"{name} (c100, TTFT 50 ms, ITL 5 ms, 100 tokens)",
                "n/a" if ours is None else ms(ours),
                peers_text(medians, runs, (AIPERF, VLLM), figure, ms, row),
                "-" if limit is None else f"<= {limit:g} ms",
                met,
            )
        )
    max_in_flight = [run.figures.get("server_max_in_flight") for run in runs if run.tool == OURS]
    row.notes.append(f"{count:,} requests per run; server max in flight during aiperf-hpc runs: {max_in_flight}")
    row.notes.append(
        "truth: the mock's actual TTFT and ITL percentiles of each run (/mock/stats actual_ttft_ms, "
        f"actual_itl_ms); it is configured for TTFT {ttft_ms:g} ms and ITL {itl_ms:g} ms and runs late when busy"
    )
    for tool, figures in medians.items():
        mock_did = _named_figures(figures, "server_", "_ms", lambda value: fmt(value, "ms", 2))
        vs_pacing = _named_figures(figures, "", "_error_vs_configured_ms", ms)
        row.notes.append(f"{tool}: the mock's actual (median of runs): {mock_did}")
        row.notes.append(f"{tool}: error vs the configured values instead: {vs_pacing}")
    row.notes.append(
        "vllm bench's ITL is its inter-chunk gap; aiperf-hpc's and AIPerf's are (latency - TTFT) / (tokens - 1)"
    )
    return row


def _named_figures(figures: Figures, prefix: str, suffix: str, render: Callable[[float], str]) -> str:
    """'ttft p50 50.12 ms · ...' for the TTFT and ITL p50 and p99 figures named `prefix` + metric +
    `suffix` (e.g. server_ttft_p50_ms); 'n/a' when none was measured."""
    parts = []
    for metric in ("ttft_p50", "ttft_p99", "itl_p50", "itl_p99"):
        value = figures.get(f"{prefix}{metric}{suffix}")
        if value is not None:
            parts.append(f"{metric.replace('_', ' ')} {render(value)}")
    return " · ".join(parts) or "n/a"


def row_rate(bench: Bench) -> RowResult:
    row = RowResult("rate", "Constant 1,000 req/s")
    rate, count = 1000.0, bench.size(1500, 5000)
    label = "rate-1000"
    with MockServer(ZERO_LATENCY, bench.raw_dir / "mock-rate.log") as server:
        load = Load(server.url, request_count=count, osl=16, rate_per_s=rate)
        runs = alternate(bench, label, server, tool_makers(bench, load, (OURS, AIPERF)), arrivals_of=count)
    medians = median_figures(runs)
    row.groups[label], row.medians[label] = runs, medians
    ours = medians.get(OURS, {})
    client_rate, server_rate = ours.get("achieved_request_rate"), ours.get("server_rate_per_s")

    def off(value: float) -> str:
        return f"{value:,.1f} req/s ({(value / rate - 1) * 100:+.2f}%)"

    ours_text = "n/a" if client_rate is None else off(client_rate)
    if server_rate is not None:
        ours_text += f"; server saw {off(server_rate)}"
    judged = [value for value in (client_rate, server_rate) if value is not None]
    row.lines.append(
        Line(
            f"constant 1,000 req/s, {count:,} requests: achieved rate",
            ours_text,
            peers_text(medians, runs, (AIPERF,), "server_rate_per_s", lambda v: "server saw " + off(v), row),
            "within 1%",
            all(abs(value / rate - 1) <= 0.01 for value in judged) if judged else False,
        )
    )
    lag = ours.get("send_lag_p99_ms")
    row.lines.append(
        Line(
            f"constant 1,000 req/s, {count:,} requests: send lag p99",
            fmt(lag, "ms", 3),
            "n/a (not reported by the peers)",
            "<= 2 ms",
            None if lag is None else lag <= 2.0,
        )
    )
    row.notes.append("server-observed rate: (n - 1) / (last - first arrival) over the run's requests at the mock")
    return row


def row_startup(bench: Bench) -> RowResult:
    row = RowResult("startup", "Wall time of a 1-request run")
    label = "one-request"
    with MockServer(ZERO_LATENCY, bench.raw_dir / "mock-startup.log") as server:
        load = Load(server.url, request_count=1, osl=16, concurrency=1, timeout_s=90.0)
        runs = alternate(bench, label, server, tool_makers(bench, load, (OURS, AIPERF, VLLM)), arrivals_of=1)
    medians = median_figures(runs)
    row.groups[label], row.medians[label] = runs, medians
    ours = medians.get(OURS, {})

    def seconds(value: float) -> str:
        return fmt(value, "s", 2)

    wall = ours.get("wall_s")
    row.lines.append(
        Line(
            "wall time of a 1-request run",
            fmt(wall, "s", 2),
            peers_text(medians, runs, (AIPERF, VLLM), "wall_s", seconds, row),
            "<= 1.5 s",
            False if wall is None else wall <= 1.5,
        )
    )
    first, seen = ours.get("first_request_s"), ours.get("server_first_arrival_s")
    row.lines.append(
        Line(
            "first request sent, from process start",
            fmt(first, "s", 2) + ("" if seen is None else f" (server saw it at {seen:.2f} s)"),
            peers_text(
                medians, runs, (AIPERF, VLLM), "server_first_arrival_s", lambda v: f"{seconds(v)} (server-seen)", row
            ),
            "<= 0.8 s",
            False if first is None else first <= 0.8,
        )
    )
    row.notes.append(
        "first request: the earliest started_wall_ns of records.jsonl minus the spawn time; "
        "'server saw': the mock's arrival time (monotonic clock) minus the spawn time"
    )
    return row


def row_memory(bench: Bench) -> RowResult:
    row = RowResult("memory", "Resident memory, all processes, c256")
    count = bench.size(1500, 5000)
    label = "memory-c256"
    with MockServer(ZERO_LATENCY, bench.raw_dir / "mock-memory.log") as server:
        load = Load(server.url, request_count=count, osl=16, concurrency=256)
        makers = tool_makers(bench, load, (OURS, AIPERF, VLLM), sample_memory=True)
        runs = alternate(bench, label, server, makers)
    medians = median_figures(runs)
    row.groups[label], row.medians[label] = runs, medians
    rss, pss = medians.get(OURS, {}).get("peak_rss_mb"), medians.get(OURS, {}).get("peak_pss_mb")

    def mb(value: float) -> str:
        return fmt(value, "MB")

    row.lines.append(
        Line(
            "resident memory, all processes, c256 (peak RSS sum)",
            mb(rss) + ("" if pss is None else f" (PSS {mb(pss)})") if rss is not None else "n/a",
            peers_text(medians, runs, (AIPERF, VLLM), "peak_rss_mb", mb, row),
            "<= 400 MB",
            False if rss is None else rss <= 400.0,
        )
    )
    row.notes.append(
        f"{count:,} requests; the CLI and all its descendants sampled from /proc every 100 ms. RSS counts "
        "pages shared between forked processes once per process; PSS splits them (the real footprint)"
    )
    return row


def row_streams(bench: Bench) -> RowResult:
    streams = bench.size(2000, 10_000)
    ttft_ms = bench.size(3000, 10_000)
    row = RowResult("streams", f"{streams:,} concurrent open streams")
    label = f"streams-{streams}"
    with MockServer({"ttft_ms": float(ttft_ms)}, bench.raw_dir / "mock-streams.log") as server:
        load = Load(
            server.url,
            request_count=streams,
            osl=16,
            concurrency=streams,
            workers=STREAMS_WORKERS,
            timeout_s=ttft_ms / 1000 + 45.0,
        )
        runs = alternate(bench, label, server, tool_makers(bench, load, (OURS,), sample_memory=True))
    medians = median_figures(runs)
    row.groups[label], row.medians[label] = runs, medians
    ours_runs = [run for run in runs if run.tool == OURS]
    failed_runs = [run for run in ours_runs if not run.ok]
    errors = [run.figures.get("error_count") for run in ours_runs]
    open_at_once = [run.figures.get("server_max_in_flight") for run in ours_runs]
    rss = median_or_none([run.figures.get("peak_rss_mb") for run in ours_runs])
    pss = median_or_none([run.figures.get("peak_pss_mb") for run in ours_runs])
    all_open = all(value is not None and value >= streams for value in open_at_once)
    error_total = sum(value or 0 for value in errors)
    ours_text = (
        f"{error_total:.0f} errors in {len(ours_runs)} run(s); open at once (server): "
        f"{', '.join('n/a' if value is None else f'{value:,.0f}' for value in open_at_once)}; "
        f"peak RSS {fmt(rss, 'MB')} (PSS {fmt(pss, 'MB')})"
    )
    row.lines.append(
        Line(
            f"{streams:,} concurrent open streams, {STREAMS_WORKERS} workers, TTFT {ttft_ms / 1000:g} s",
            ours_text,
            "n/a",
            "sustained, memory bounded, no errors",
            not failed_runs and all_open and bool(ours_runs),
        )
    )
    row.notes += [f"aiperf-hpc: {run.note}" for run in failed_runs]
    return row


def row_postprocess(bench: Bench) -> RowResult:
    count = bench.size(100_000, RECORD_COUNT)
    row = RowResult("postprocess", f"Post-processing {count:,} records")
    path = ensure_records_file(bench.cache_dir, count)
    runs: list[ToolRun] = []
    for round_index in range(bench.runs):
        run_dir = bench.raw_dir / "postprocess" / f"r{round_index}"
        spool = run_dir / "spool.npy"
        run = ToolRun(OURS, round_index, ok=True, figures={}, run_dir=str(run_dir))
        for step in ("spool", "time"):  # each in a fresh interpreter
            argv = [sys.executable, "-m", "benchmarks.records_1m", step, str(path), str(spool)]
            done = run_bounded(argv, run_dir / f"{step}.txt", 180.0, cwd=bench.repo_root)
            lines = done.log_path.read_text(errors="replace").strip().splitlines()
            try:
                figures = orjson.loads(lines[-1]) if done.returncode == 0 and lines else None
            except orjson.JSONDecodeError:
                figures = None
            if not isinstance(figures, dict):
                run.ok = False
                run.note = f"{step} exited with code {done.returncode}: {' '.join(lines[-3:])[:400]}"
                break
            run.figures.update({key: float(value) for key, value in figures.items()})
        spool.unlink(missing_ok=True)  # 200 MB
        runs.append(run)
        print(f"bench: postprocess r{round_index}: {_progress(run)}", flush=True)
    medians = median_figures(runs)
    row.groups["postprocess"], row.medians["postprocess"] = runs, medians
    ours = medians.get(OURS, {})
    total = ours.get("total_s")
    ours_text = (
        "n/a"
        if total is None
        else (
            f"{total:.2f} s (read the spool {ours.get('read_s', 0):.2f} + metrics {ours.get('compute_s', 0):.2f});"
            f" spooling during the run {ours.get('spool_us_per_record', 0):.1f} µs per record;"
            f" recompute reads records.jsonl in {ours.get('jsonl_read_s', 0):.2f} s"
        )
    )
    if total is None:
        row.notes.append(f"aiperf-hpc: {failure_of(runs, OURS)}")
    row.lines.append(
        Line(
            f"post-processing {count:,} records at the end of a run (read_spool + metrics_of_columns)",
            ours_text,
            "n/a (not measured)",
            "<= 5 s" if count == RECORD_COUNT else f"<= {5 * count / RECORD_COUNT:g} s (5 s per million)",
            None if total is None else total <= 5.0 * count / RECORD_COUNT,
        )
    )
    row.notes.append(f"synthetic records of 16 tokens each, 0.1% errors, in {path} (kept for later runs)")
    return row


def _slug(text: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())


def row_scaling(bench: Bench) -> RowResult:
    """Not in the issue's table (and not run by default): req/s against the zero-work mock as the
    worker count grows, to see where the client stops scaling on this machine."""
    row = RowResult("scaling", "Streamed req/s by worker count, zero-work mock, c256")
    count = bench.size(1500, 5000)
    with MockServer(ZERO_WORK, bench.raw_dir / "mock-scaling.log") as server:
        makers: list[tuple[str, RunMaker]] = []
        for workers in SCALING_WORKERS:
            load = Load(server.url, request_count=count, osl=16, concurrency=256, workers=workers)
            makers.append((f"{OURS} --workers {workers}", partial(_ours_with_workers, load)))
        runs = alternate(bench, "scaling-c256", server, makers)
    for workers in SCALING_WORKERS:
        subset = [run for run in runs if run.figures.get("workers") == workers]
        label = f"workers-{workers}"
        medians = median_figures(subset)
        row.groups[label], row.medians[label] = subset, medians
        value = medians.get(OURS, {}).get("request_throughput")
        figure = f"streamed req/s, c256, zero-work mock, {workers} worker{'' if workers == 1 else 's'}"
        row.lines.append(Line(figure, fmt(value), "-", "-", None))
    row.notes.append(f"{count:,} requests per run on {os.cpu_count()} CPUs; the mock server holds one of them")
    return row


ROWS: dict[str, Callable[[Bench], RowResult]] = {
    "throughput": row_throughput,
    "latency-error": row_latency_error,
    "rate": row_rate,
    "startup": row_startup,
    "memory": row_memory,
    "streams": row_streams,
    "postprocess": row_postprocess,
}
"""Row name (for --only) -> row function, in the issue's order: what `make bench` runs."""

EXTRA_ROWS: dict[str, Callable[[Bench], RowResult]] = {
    "scaling": row_scaling,
    "soak": lambda bench: row_soak(bench.quick, bench.raw_dir),
}
"""Rows run only when asked for with --only."""


def run_row(name: str, bench: Bench) -> RowResult:
    started_s = time.perf_counter()
    row = {**ROWS, **EXTRA_ROWS}[name](bench)
    row.elapsed_s = time.perf_counter() - started_s
    return row
