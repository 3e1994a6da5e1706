"""`aiperf-hpc report DIR`: one self-contained HTML page (DIR/report.html) and its figures as PNG
files (DIR/plots/*.png) for a finished run, or for a sweep and each of its points.

A run directory needs `records.jsonl` (the figures are drawn from the records) and normally
`profile_export.json` (the tables); without the export (the records service died mid-run), it is
recomputed first, as `aiperf-hpc recompute` does, and the page says so. With `server_metrics.jsonl`
(the server's /metrics, scraped during the run) the page also shows the server's queue and KV-cache
usage over time and its summary. A sweep directory (one with `sweep_summary.json`) gets a page with
the throughput-vs-latency curves and the summary table, linking to a report for each point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiperf_hpc import __version__
from aiperf_hpc.artifacts import (
    PLOTS_DIR,
    PROFILE_EXPORT_FILE,
    RECORDS_FILE,
    REPORT_FILE,
    SERVER_METRICS_FILE,
    SWEEP_SUMMARY_FILE,
)
from aiperf_hpc.core.metrics import METRIC_UNITS, RUN_FIGURE_UNITS
from aiperf_hpc.errors import RunError, UsageError
from aiperf_hpc.reporting import page, plots
from aiperf_hpc.reporting.run_dir import describe_load, format_wall_ns, number, section
from aiperf_hpc.reporting.series import RequestSeries, request_series, server_series
from aiperf_hpc.results.atomic import write_bytes_atomically
from aiperf_hpc.results.json_export import read_json_object
from aiperf_hpc.results.pipeline import recompute
from aiperf_hpc.results.records_jsonl import read_records_jsonl
from aiperf_hpc.results.server_metrics_jsonl import read_server_metrics_jsonl
from aiperf_hpc.results.sweep import SWEEP_COLUMNS
from aiperf_hpc.results.tables import METRIC_TITLES

_STATS = ("avg", "min", "max", "p50", "p90", "p99", "std", "count")
_NODE_COLUMNS = (
    ("workers", "Workers"),
    ("request_count", "Requests"),
    ("success_count", "Successes"),
    ("error_count", "Errors"),
    ("cancelled_count", "Cancelled"),
    ("lost_count", "Lost"),
    ("request_throughput", "Throughput (req/s)"),
    ("output_token_throughput", "Output tokens/s"),
    ("send_lag_p50_ms", "Send lag p50 (ms)"),
    ("send_lag_p99_ms", "Send lag p99 (ms)"),
    ("request_latency_p50_ms", "Latency p50 (ms)"),
    ("request_latency_p99_ms", "Latency p99 (ms)"),
    ("clock_offset_bound_ms", "Clock offset bound (ms)"),
)


@dataclass(frozen=True)
class Plot:
    """One figure: written as plots/<name>.png and embedded in the page."""

    name: str
    caption: str
    png: bytes


# The figures of a run, in page order: file name, caption, drawing function (None: left out).
_RUN_PLOTS: tuple[tuple[str, str, Callable[[RequestSeries], bytes | None]], ...] = (
    (
        "time_to_first_token",
        "Time to first token (streaming successes)",
        lambda s: plots.distribution_png(s.ttft_ms, title="TTFT", unit="ms"),
    ),
    (
        "inter_token_latency",
        "Inter-token latency per request: (latency - TTFT) / (output tokens - 1)",
        lambda s: plots.distribution_png(s.itl_ms, title="ITL", unit="ms"),
    ),
    (
        "request_latency",
        "Request latency (successes)",
        lambda s: plots.distribution_png(s.latency_ms, title="Request latency", unit="ms"),
    ),
    ("throughput", "Completed requests and output tokens per second", plots.throughput_png),
    ("in_flight", "Requests in flight (started, not yet ended)", plots.in_flight_png),
    ("send_lag", "Send lag: actual minus scheduled send time (rate and trace modes)", plots.send_lag_png),
)
SERVER_PLOT = "server_metrics"
PLOT_NAMES: tuple[str, ...] = (*(name for name, _, _ in _RUN_PLOTS), SERVER_PLOT)


def write_report(directory: Path) -> Path:
    """Write the report of a run or sweep directory; returns the page's path.

    Raises UsageError when `directory` is not a directory, RunError when a run's records are
    missing, empty or unreadable or an export is not valid JSON, OSError when writing fails.
    """
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    if (directory / SWEEP_SUMMARY_FILE).is_file():
        return write_sweep_report(directory)
    return write_run_report(directory)


def write_run_report(run_dir: Path) -> Path:
    """Write run_dir/report.html and run_dir/plots/*.png (see `write_report` for the errors)."""
    records = _read_records(run_dir)
    export_path = run_dir / PROFILE_EXPORT_FILE
    note = None
    if not export_path.is_file():
        recompute(run_dir)
        note = f"{PROFILE_EXPORT_FILE} was missing: recomputed from {RECORDS_FILE} (as aiperf-hpc recompute does)."
    document = read_json_object(export_path)
    run_plots = draw_run_plots(request_series(records))
    server_png = plots.server_metrics_png(server_series(_read_server_metrics(run_dir), records))
    if server_png is not None:
        caption = "Server /metrics over the run: requests running and waiting, KV-cache usage"
        run_plots.append(Plot(SERVER_PLOT, caption, server_png))
    _write_plots(run_dir / PLOTS_DIR, run_plots)
    path = run_dir / REPORT_FILE
    write_bytes_atomically(path, render_run_page(document, run_plots, run_id=run_dir.name, note=note).encode())
    return path


def write_sweep_report(sweep_dir: Path) -> Path:
    """Write each point's report, then sweep_dir/report.html with the curves and the summary table
    linking to them, and sweep_dir/plots/sweep_curve.png."""
    rows = _sweep_rows(sweep_dir)
    for row in rows:
        label = str(row["value"])
        point_dir = sweep_dir / label
        if Path(label).name != label or label in ("", ".", ".."):
            raise RunError(f"{sweep_dir / SWEEP_SUMMARY_FILE} names point {label!r}, which is not a directory name")
        if not point_dir.is_dir():
            raise RunError(f"{sweep_dir / SWEEP_SUMMARY_FILE} names point {row['value']!r}, but {point_dir} is missing")
        write_run_report(point_dir)
    curve = plots.sweep_curve_png(rows)
    sweep_plots = [] if curve is None else [Plot("sweep_curve", "Throughput against latency, per sweep point", curve)]
    _write_plots(sweep_dir / PLOTS_DIR, sweep_plots)
    path = sweep_dir / REPORT_FILE
    write_bytes_atomically(path, render_sweep_page(rows, sweep_plots, sweep_id=sweep_dir.name).encode())
    return path


def draw_run_plots(series: RequestSeries) -> list[Plot]:
    """Every figure the run has data for, in page order."""
    drawn = [(name, caption, draw(series)) for name, caption, draw in _RUN_PLOTS]
    return [Plot(name, caption, png) for name, caption, png in drawn if png is not None]


def render_run_page(
    document: Mapping[str, Any], run_plots: Sequence[Plot], *, run_id: str, note: str | None = None
) -> str:
    """The run's page from its `profile_export.json` document and figures."""
    metadata = section(document, "metadata")
    warnings = section(metadata, "validity").get("warnings") or []
    sections = [page.paragraph(note, css_class="warning")] if note else []
    sections += [page.paragraph(f"Warning: {warning}", css_class="warning") for warning in warnings]
    sections += [page.heading("Run"), page.table(("Field", "Value"), _overview_rows(document, run_id))]
    run = section(document, "run")
    sections += [
        page.heading("Summary"),
        page.table(
            ("Figure", "Value", "Unit"),
            [(name, number(run.get(name)), unit) for name, unit in RUN_FIGURE_UNITS.items() if name in run],
        ),
    ]
    metrics = section(document, "metrics")
    metric_rows = [
        (METRIC_TITLES.get(name, name), *(number(section(metrics, name).get(stat)) for stat in _STATS))
        for name in [*METRIC_UNITS, *(n for n in metrics if n not in METRIC_UNITS)]
        if name in metrics
    ]
    sections += [page.heading("Metrics"), page.table(("Metric", *_STATS), metric_rows)]
    sections.append(page.heading("Figures"))
    sections += [_figure_html(plot) for plot in run_plots]
    if not run_plots:
        sections.append(page.paragraph("No profiling record has a latency: nothing to draw."))
    by_node = section(document, "by_node")
    if by_node:
        node_rows = [(name, *(number(section(by_node, name).get(key)) for key, _ in _NODE_COLUMNS)) for name in by_node]
        sections += [page.heading("By node"), page.table(("Node", *(h for _, h in _NODE_COLUMNS)), node_rows)]
    for url, summary in section(document, "server_metrics").items():
        if isinstance(summary, Mapping):
            sections += [page.heading(f"Server metrics: {url}"), page.table(("Figure", "Value"), _server_rows(summary))]
    errors = section(document, "errors_by_type")
    if errors:
        error_rows = [
            (key, number(section(errors, key).get("count")), section(errors, key).get("sample_message") or "")
            for key in errors
        ]
        sections += [page.heading("Errors by type"), page.table(("Error type", "Count", "Sample message"), error_rows)]
    return page.render_page(f"aiperf-hpc report: {run_id}", _generated_by(), sections)


def render_sweep_page(rows: Sequence[Mapping[str, Any]], sweep_plots: Sequence[Plot], *, sweep_id: str) -> str:
    """The sweep's page: curves, then the summary table with a link to each point's report."""
    sections = [page.heading("Throughput against latency")]
    sections += [
        page.image(p.png, alt=p.caption, caption=f"{p.caption} ({PLOTS_DIR}/{p.name}.png)") for p in sweep_plots
    ]
    if not sweep_plots:
        sections.append(page.paragraph("No point has both a throughput and a latency: nothing to draw."))
    # Like the console's summary: leave out what no point has (send lag of closed-loop sweeps, goodput).
    columns = [column for column in SWEEP_COLUMNS[1:] if any(row.get(column) is not None for row in rows)]
    headers = ("Point", *(column.replace("_", " ") for column in columns))
    table_rows = [
        (page.link(f"{row['value']}/{REPORT_FILE}", str(row["value"])), *(number(row.get(c)) for c in columns))
        for row in rows
    ]
    sections += [
        page.heading("Points"),
        page.table(headers, table_rows, raw_first_column=True),
    ]
    return page.render_page(f"aiperf-hpc sweep report: {sweep_id}", _generated_by(), sections)


def _figure_html(plot: Plot) -> str:
    return page.image(plot.png, alt=plot.caption, caption=f"{plot.caption} ({PLOTS_DIR}/{plot.name}.png)")


def _overview_rows(document: Mapping[str, Any], run_id: str) -> list[tuple[str, object]]:
    metadata = section(document, "metadata")
    config = section(metadata, "config")
    endpoint = section(config, "endpoint")
    validity = section(metadata, "validity")
    started = number(metadata.get("started_wall_ns"))
    finished = number(metadata.get("finished_wall_ns"))
    rows: list[tuple[str, object]] = [
        ("Run", run_id),
        ("Status", metadata.get("status", "unknown")),
        ("Valid", validity.get("valid", "unknown")),
        ("Started (UTC)", format_wall_ns(int(started)) if started is not None else "unknown"),
        ("Finished (UTC)", format_wall_ns(int(finished)) if finished is not None else "unknown"),
        ("Model", endpoint.get("model", "unknown")),
        ("Endpoint", f"{endpoint.get('url', 'unknown')} ({endpoint.get('endpoint_type', 'unknown')})"),
        ("Streaming", endpoint.get("streaming", "unknown")),
        ("Load", describe_load(section(config, "load"))),
        ("Workers", metadata.get("workers", "unknown")),
        ("Host", metadata.get("hostname", "unknown")),
        ("Slurm job", section(metadata, "slurm").get("job_id", "none")),
        ("aiperf-hpc version", section(metadata, "versions").get("aiperf_hpc", "unknown")),
    ]
    return [(name, str(value)) for name, value in rows]


def _server_rows(summary: Mapping[str, Any]) -> list[tuple[str, object]]:
    """A URL's `core.server_metrics` summary as (figure, value) rows."""
    rows: list[tuple[str, object]] = [
        (f"{name.replace('_', ' ')} (increase)", number(value)) for name, value in section(summary, "counters").items()
    ]
    rows.append(("prefix cache hit rate", number(summary.get("prefix_cache_hit_rate"))))
    rows += [(f"succeeded: {reason}", number(count)) for reason, count in section(summary, "request_success").items()]
    for name, stats in section(summary, "gauges").items():
        rows += [
            (f"{name.replace('_', ' ')} {stat}", number(section(stats).get(stat)))
            for stat in ("mean", "p50", "p99", "max")
        ]
    rows += [
        (f"server {name.replace('_', ' ')} mean (ms)", number(section(stats).get("mean")))
        for name, stats in section(summary, "histograms_ms").items()
    ]
    rows.append(("scrapes (failed)", f"{summary.get('scrapes', 0)} ({summary.get('scrape_errors', 0)})"))
    return rows


def _read_server_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / SERVER_METRICS_FILE
    try:
        return read_server_metrics_jsonl(path)
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None


def _generated_by() -> str:
    return f"Generated offline by aiperf-hpc {__version__}; figures also in {PLOTS_DIR}/."


def _read_records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / RECORDS_FILE
    if not path.is_file():
        raise RunError(f"no {RECORDS_FILE} in {run_dir}: not a finished run's artifact directory")
    try:
        records = read_records_jsonl(path).records
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not records:
        raise RunError(f"{path} holds no records: nothing to report")
    return records


def _sweep_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    path = sweep_dir / SWEEP_SUMMARY_FILE
    rows = read_json_object(path).get("rows")
    if not isinstance(rows, list) or not all(isinstance(row, dict) and "value" in row for row in rows):
        raise RunError(f"{path} has no list of rows with a 'value' each")
    if not rows:
        raise RunError(f"{path} lists no points: nothing to report")
    return rows


def _write_plots(plots_dir: Path, drawn: Sequence[Plot]) -> None:
    """Write the figures, and remove figures of ours that an earlier report drew but this one has
    no data for, so plots/ never mixes two reports."""
    plots_dir.mkdir(exist_ok=True)
    for plot in drawn:
        write_bytes_atomically(plots_dir / f"{plot.name}.png", plot.png)
    kept = {plot.name for plot in drawn}
    for name in (*PLOT_NAMES, "sweep_curve"):
        if name not in kept:
            (plots_dir / f"{name}.png").unlink(missing_ok=True)
