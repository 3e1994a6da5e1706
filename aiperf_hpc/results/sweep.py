"""The summary of a sweep (`--concurrency 1,4,16` or `--request-rate 10,20,40`): one row per swept
value, the figures a reader compares across values, as JSON, CSV and a console table.

Each row is labelled by the caller (e.g. "concurrency4"). The files always have every column, with
null (JSON) or an empty cell (CSV) where a run has no such figure, so scripts see one schema; the
console table leaves out the columns no run has (send lag and achieved rate for closed-loop
sweeps, goodput without `--goodput`).

JSON layout::

    {"rows": [{"value": "concurrency4", "request_throughput": 12.5, ..., "error_count": 0}, ...]}
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from aiperf_hpc.core.metrics import RunMetrics
from aiperf_hpc.results.atomic import write_bytes_atomically
from aiperf_hpc.results.tables import format_cell, print_tables

SweepRow = tuple[str, RunMetrics]


@dataclass(frozen=True)
class _Column:
    key: str
    header: str  # two short lines, so fourteen columns fit a log's width without wrapping
    value: Callable[[RunMetrics], float | int | None]
    optional: bool = False  # left out of the console table when no run has a value


def _stat(metric: str, stat: str) -> Callable[[RunMetrics], float | None]:
    def value(metrics: RunMetrics) -> float | None:
        stats = metrics.metrics.get(metric)
        return None if stats is None else float(getattr(stats, stat))

    return value


_COLUMNS: tuple[_Column, ...] = (
    _Column("request_throughput", "Throughput\nreq/s", lambda m: m.request_throughput),
    _Column("output_token_throughput", "Output\ntokens/s", lambda m: m.output_token_throughput),
    _Column("achieved_request_rate", "Achieved\nreq/s", lambda m: m.achieved_request_rate, optional=True),
    _Column("time_to_first_token_p50", "TTFT p50\n(ms)", _stat("time_to_first_token", "p50")),
    _Column("time_to_first_token_p99", "TTFT p99\n(ms)", _stat("time_to_first_token", "p99")),
    _Column("inter_token_latency_p50", "ITL p50\n(ms)", _stat("inter_token_latency", "p50")),
    _Column("inter_token_latency_p99", "ITL p99\n(ms)", _stat("inter_token_latency", "p99")),
    _Column("request_latency_p50", "Latency\np50 (ms)", _stat("request_latency", "p50")),
    _Column("request_latency_p99", "Latency\np99 (ms)", _stat("request_latency", "p99")),
    _Column("send_lag_p99", "Send lag\np99 (ms)", _stat("send_lag", "p99"), optional=True),
    _Column("goodput", "Goodput\nreq/s", lambda m: m.goodput, optional=True),
    _Column("good_request_fraction", "Good\nfraction", lambda m: m.good_request_fraction, optional=True),
    _Column("error_count", "Errors", lambda m: m.error_count),
)

# The keys of a summary row, in order: the label, then every figure.
SWEEP_COLUMNS: tuple[str, ...] = ("value", *(column.key for column in _COLUMNS))


def sweep_summary_rows(rows: Sequence[SweepRow]) -> list[dict[str, str | float | int | None]]:
    """One dict per swept value, keyed by `SWEEP_COLUMNS`, None where a run has no such figure."""
    return [{"value": label} | {column.key: column.value(metrics) for column in _COLUMNS} for label, metrics in rows]


def write_sweep_summary(path_json: Path, path_csv: Path, rows: Sequence[SweepRow]) -> None:
    """Write the summary as JSON to `path_json` and CSV to `path_csv`, each replaced atomically.

    Raises OSError when a file cannot be written.
    """
    summary = sweep_summary_rows(rows)
    write_bytes_atomically(path_json, orjson.dumps({"rows": summary}, option=orjson.OPT_INDENT_2) + b"\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SWEEP_COLUMNS)
    for row in summary:
        writer.writerow(["" if row[key] is None else row[key] for key in SWEEP_COLUMNS])
    write_bytes_atomically(path_csv, buffer.getvalue().encode("utf-8"))


def render_sweep_summary(rows: Sequence[SweepRow], *, title: str, console: Console) -> None:
    """Print the summary as one table to `console`, one row per swept value, in the given order."""
    columns = [
        column
        for column in _COLUMNS
        if not column.optional or any(column.value(metrics) is not None for _, metrics in rows)
    ]
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("Value", justify="left", no_wrap=True)
    for column in columns:
        table.add_column(column.header, justify="right", no_wrap=True)
    for label, metrics in rows:
        table.add_row(label, *(format_cell(column.value(metrics)) for column in columns))
    print_tables([table], console)
