"""`aiperf-hpc compare DIR DIR...`: key metrics of several runs side by side (rows: metrics,
columns: runs), each with its relative change against the first run, the baseline.

A delta is `(value - baseline) / baseline` in percent; it is None (shown "n/a") when either
value is unknown or the baseline is zero. A metric no run has (send lag of closed-loop runs,
goodput without `--goodput`) is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from aiperf_hpc.artifacts import PROFILE_EXPORT_FILE
from aiperf_hpc.errors import UsageError
from aiperf_hpc.reporting.page import format_value
from aiperf_hpc.reporting.run_dir import Document, metric_stat, run_figure
from aiperf_hpc.reporting.text_table import print_table
from aiperf_hpc.results.json_export import read_json_object

Getter = Callable[[Document], float | int | None]


def _figure(name: str) -> Getter:
    return lambda document: run_figure(document, name)


def _stat(metric: str, stat: str) -> Getter:
    return lambda document: metric_stat(document, metric, stat)


# (key, unit, value): the rows of the comparison, in order.
COMPARED: tuple[tuple[str, str, Getter], ...] = (
    ("request_throughput", "requests/s", _figure("request_throughput")),
    ("output_token_throughput", "tokens/s", _figure("output_token_throughput")),
    ("total_token_throughput", "tokens/s", _figure("total_token_throughput")),
    ("goodput", "requests/s", _figure("goodput")),
    ("time_to_first_token_avg", "ms", _stat("time_to_first_token", "avg")),
    ("time_to_first_token_p50", "ms", _stat("time_to_first_token", "p50")),
    ("time_to_first_token_p99", "ms", _stat("time_to_first_token", "p99")),
    ("inter_token_latency_avg", "ms", _stat("inter_token_latency", "avg")),
    ("inter_token_latency_p50", "ms", _stat("inter_token_latency", "p50")),
    ("inter_token_latency_p99", "ms", _stat("inter_token_latency", "p99")),
    ("request_latency_avg", "ms", _stat("request_latency", "avg")),
    ("request_latency_p50", "ms", _stat("request_latency", "p50")),
    ("request_latency_p99", "ms", _stat("request_latency", "p99")),
    ("send_lag_p99", "ms", _stat("send_lag", "p99")),
    ("request_count", "requests", _figure("request_count")),
    ("error_count", "requests", _figure("error_count")),
    ("benchmark_duration_s", "s", _figure("benchmark_duration_s")),
)


@dataclass(frozen=True)
class ComparedMetric:
    """One row: the metric's value in each run and its delta against the first (None for the first)."""

    metric: str
    unit: str
    values: list[float | int | None]
    deltas_pct: list[float | None]


@dataclass(frozen=True)
class Comparison:
    """`runs` are the column labels (directory names, or the paths as given when names repeat)."""

    runs: list[str]
    paths: list[str]
    metrics: list[ComparedMetric]


def load_comparison(run_dirs: Sequence[Path]) -> Comparison:
    """Compare the runs in `run_dirs`, the first being the baseline.

    Raises UsageError with fewer than two directories or when one has no `profile_export.json`,
    RunError when an export cannot be read.
    """
    if len(run_dirs) < 2:
        raise UsageError("compare needs at least two run directories")
    documents = []
    for run_dir in run_dirs:
        path = run_dir / PROFILE_EXPORT_FILE
        if not path.is_file():
            raise UsageError(f"{run_dir} has no {PROFILE_EXPORT_FILE}: not a finished run's directory")
        documents.append(read_json_object(path))
    names = [run_dir.resolve().name for run_dir in run_dirs]
    labels = names if len(set(names)) == len(names) else [str(run_dir) for run_dir in run_dirs]
    return compare_documents(labels, documents, paths=[str(run_dir) for run_dir in run_dirs])


def compare_documents(labels: Sequence[str], documents: Sequence[Document], *, paths: Sequence[str]) -> Comparison:
    """Compare `profile_export.json` documents, labelled `labels`, the first being the baseline."""
    rows = []
    for key, unit, value in COMPARED:
        values = [value(document) for document in documents]
        if all(v is None for v in values):
            continue
        deltas = [None, *(relative_delta_pct(values[0], v) for v in values[1:])]
        rows.append(ComparedMetric(metric=key, unit=unit, values=values, deltas_pct=deltas))
    return Comparison(runs=list(labels), paths=list(paths), metrics=rows)


def relative_delta_pct(baseline: float | int | None, value: float | int | None) -> float | None:
    """`(value - baseline) / baseline` in percent; None when either is None or the baseline is 0."""
    if baseline is None or value is None or baseline == 0:
        return None
    return (value - baseline) / abs(baseline) * 100.0


def format_delta(delta_pct: float | None) -> str:
    """ "+12.3%", "-4.0%", or "n/a"."""
    return "n/a" if delta_pct is None else f"{delta_pct:+.1f}%"


def comparison_as_json(comparison: Comparison) -> dict[str, object]:
    """`{"baseline": ..., "runs": [{"id", "path"}...], "metrics": [{"metric", "unit", "values", "deltas_pct"}...]}`."""
    return {
        "baseline": comparison.runs[0],
        "runs": [{"id": label, "path": path} for label, path in zip(comparison.runs, comparison.paths, strict=True)],
        "metrics": [
            {"metric": row.metric, "unit": row.unit, "values": row.values, "deltas_pct": row.deltas_pct}
            for row in comparison.metrics
        ],
    }


def render_comparison(comparison: Comparison, *, console: Console) -> None:
    """Print the comparison as one table; cells after the first column carry their delta."""
    table = Table(title=f"Compared with {comparison.runs[0]}", box=box.SIMPLE_HEAD)
    table.add_column("Metric", justify="left", no_wrap=True)
    table.add_column("Unit", justify="left", no_wrap=True)
    for index, label in enumerate(comparison.runs):
        table.add_column(f"{label}\n(baseline)" if index == 0 else label, justify="right")
    for row in comparison.metrics:
        cells = [format_value(row.values[0])]
        cells += [
            f"{format_value(value)} ({format_delta(delta)})"
            for value, delta in zip(row.values[1:], row.deltas_pct[1:], strict=True)
        ]
        table.add_row(row.metric, row.unit, *cells)
    print_table(table, console)
