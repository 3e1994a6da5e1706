"""`aiperf-hpc runs list [ROOT]`: every finished run under a directory, one row each.

A run is a directory holding `profile_export.json`; sweep points are runs of their own (id
"sweep/concurrency4"). Rows are ordered by start time, oldest first, runs without one last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Table

from aiperf_hpc.artifacts import PROFILE_EXPORT_FILE
from aiperf_hpc.errors import AiperfError, UsageError
from aiperf_hpc.reporting.page import format_value
from aiperf_hpc.reporting.run_dir import (
    Document,
    describe_load,
    format_wall_ns,
    metric_stat,
    number,
    run_figure,
    section,
)
from aiperf_hpc.reporting.text_table import print_table
from aiperf_hpc.results.json_export import read_json_object


@dataclass(frozen=True)
class RunRow:
    """One run: where it is, what it measured, and its key figures (None where unknown)."""

    id: str
    date: str | None
    started_wall_ns: int | None
    status: str | None
    model: str | None
    endpoint_url: str | None
    endpoint_type: str | None
    load: str
    request_throughput: float | None
    time_to_first_token_p50_ms: float | None
    inter_token_latency_p50_ms: float | None
    request_latency_p99_ms: float | None
    error_count: int | None
    slurm_job_id: str | None


@dataclass(frozen=True)
class RunsFound:
    """The runs under a root, and one line per `profile_export.json` that could not be read."""

    rows: list[RunRow]
    problems: list[str]


def find_runs(root: Path) -> RunsFound:
    """Every run under `root` (`root` itself included). Raises UsageError when `root` is not a directory."""
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    rows: list[RunRow] = []
    problems: list[str] = []
    for path in sorted(root.rglob(PROFILE_EXPORT_FILE)):
        run_id = path.parent.relative_to(root).as_posix()
        try:
            rows.append(run_row(run_id, read_json_object(path)))
        except AiperfError as exc:
            problems.append(str(exc))
    rows.sort(key=lambda row: (row.started_wall_ns is None, row.started_wall_ns or 0, row.id))
    return RunsFound(rows=rows, problems=problems)


def run_row(run_id: str, document: Document) -> RunRow:
    """The row of one run from its `profile_export.json` document."""
    metadata = section(document, "metadata")
    config = section(metadata, "config")
    endpoint = section(config, "endpoint")
    started = number(metadata.get("started_wall_ns"))
    started_wall_ns = int(started) if started is not None else None
    errors = run_figure(document, "error_count")
    throughput = run_figure(document, "request_throughput")
    job_id = section(metadata, "slurm").get("job_id")
    return RunRow(
        id=run_id,
        date=format_wall_ns(started_wall_ns),
        started_wall_ns=started_wall_ns,
        status=_text(metadata.get("status")),
        model=_text(endpoint.get("model")),
        endpoint_url=_text(endpoint.get("url")),
        endpoint_type=_text(endpoint.get("endpoint_type")),
        load=describe_load(section(config, "load")),
        request_throughput=None if throughput is None else float(throughput),
        time_to_first_token_p50_ms=metric_stat(document, "time_to_first_token", "p50"),
        inter_token_latency_p50_ms=metric_stat(document, "inter_token_latency", "p50"),
        request_latency_p99_ms=metric_stat(document, "request_latency", "p99"),
        error_count=None if errors is None else int(errors),
        slurm_job_id=_text(job_id),
    )


def runs_as_json(rows: Sequence[RunRow]) -> list[dict[str, object]]:
    """The rows as JSON-ready dicts, keyed by the `RunRow` field names."""
    return [asdict(row) for row in rows]


def render_runs_table(rows: Sequence[RunRow], *, root: Path, console: Console) -> None:
    """Print the rows as one table (numbers as on the report page, "n/a" where unknown)."""
    table = Table(title=f"Runs under {root}", box=box.SIMPLE_HEAD)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("Run", "left"),
        ("Date (UTC)", "left"),
        ("Status", "left"),
        ("Model", "left"),
        ("Endpoint", "left"),
        ("Load", "left"),
        ("Throughput\nreq/s", "right"),
        ("TTFT p50\n(ms)", "right"),
        ("ITL p50\n(ms)", "right"),
        ("Latency\np99 (ms)", "right"),
        ("Errors", "right"),
        ("Slurm\njob", "left"),
    )
    for header, justify in columns:
        table.add_column(header, justify=justify)
    for row in rows:
        table.add_row(
            row.id,
            row.date or "n/a",
            row.status or "n/a",
            row.model or "n/a",
            f"{row.endpoint_url or 'n/a'} ({row.endpoint_type or 'n/a'})",
            row.load,
            format_value(row.request_throughput),
            format_value(row.time_to_first_token_p50_ms),
            format_value(row.inter_token_latency_p50_ms),
            format_value(row.request_latency_p99_ms),
            format_value(row.error_count),
            row.slurm_job_id or "",
        )
    print_table(table, console)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
