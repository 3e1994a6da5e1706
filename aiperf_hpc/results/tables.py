"""The results summary printed at the end of a run: a metrics table, the run-level figures, a table
by node when the run spanned more than one node, the errors by type when any request failed, and a
table per scraped server `/metrics` (the server's own counters over the run, `core.server_metrics`).
Figures that only some runs have (send lag and latencies from the intended send time for scheduled
runs, goodput, the token source, the clock offset bound) appear only when the run has them.

It has to read well in a Slurm log as much as in a terminal: nothing is conveyed by colour alone,
and when the console is not a terminal (its width then defaults to 80 columns) the tables are
rendered at least `LOG_WIDTH_COLUMNS` wide instead of being squeezed or truncated.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from aiperf_hpc.core.metrics import MetricStats, RunMetrics
from aiperf_hpc.core.node_metrics import NodeMetrics

LOG_WIDTH_COLUMNS = 160

METRIC_TITLES: dict[str, str] = {
    "request_latency": "Request Latency (ms)",
    "request_latency_from_intended": "Request Latency From Intended Send (ms)",
    "time_to_first_token": "Time to First Token (ms)",
    "time_to_first_token_from_intended": "Time to First Token From Intended Send (ms)",
    "time_to_second_token": "Time to Second Token (ms)",
    "inter_token_latency": "Inter Token Latency (ms)",
    "inter_chunk_latency": "Inter Chunk Latency (ms)",
    "output_token_throughput_per_user": "Output Token Throughput Per User (tokens/s/user)",
    "input_sequence_length": "Input Sequence Length (tokens)",
    "output_sequence_length": "Output Sequence Length (tokens)",
    "send_lag": "Send Lag (ms)",
}

# Columns of the metrics table, in AIPerf's order.
TABLE_STATS: tuple[str, ...] = ("avg", "min", "max", "p99", "p90", "p50", "std")


@dataclass(frozen=True)
class _NodeColumn:
    header: str  # two short lines, so the table fits a log's width
    value: Callable[[NodeMetrics], float | int | None]
    optional: bool = False  # left out when no node has a value


_NODE_COLUMNS: tuple[_NodeColumn, ...] = (
    _NodeColumn("Workers", lambda n: n.workers),
    _NodeColumn("Requests", lambda n: n.request_count),
    _NodeColumn("Successes", lambda n: n.success_count),
    _NodeColumn("Errors", lambda n: n.error_count),
    _NodeColumn("Cancelled", lambda n: n.cancelled_count),
    _NodeColumn("Lost", lambda n: n.lost_count),
    _NodeColumn("Throughput\nreq/s", lambda n: n.request_throughput),
    _NodeColumn("Output\ntokens/s", lambda n: n.output_token_throughput),
    _NodeColumn("Send lag\np50 (ms)", lambda n: n.send_lag_p50_ms, optional=True),
    _NodeColumn("Send lag\np99 (ms)", lambda n: n.send_lag_p99_ms, optional=True),
    _NodeColumn("Latency\np50 (ms)", lambda n: n.request_latency_p50_ms),
    _NodeColumn("Latency\np99 (ms)", lambda n: n.request_latency_p99_ms),
    _NodeColumn("Clock offset\nbound (ms)", lambda n: n.clock_offset_bound_ms, optional=True),
)


def render_results(
    metrics: RunMetrics, *, title: str, console: Console, server_metrics: Mapping[str, Any] | None = None
) -> None:
    """Print the summary of `metrics` (and of each URL's `server_metrics` summary) to `console`.
    Call once, after the run's metrics are computed."""
    tables = [_metrics_table(metrics, title), _run_table(metrics)]
    if metrics.nodes > 1:
        tables.append(_nodes_table(metrics))
    if metrics.errors_by_type:
        tables.append(_errors_table(metrics))
    tables += [_server_table(url, summary) for url, summary in (server_metrics or {}).items()]
    print_tables(tables, console)


def print_tables(tables: Sequence[Table], console: Console) -> None:
    """Print `tables` to `console`; on a console that is not a terminal and narrower than
    `LOG_WIDTH_COLUMNS`, as plain text at that width, never wrapped or cropped."""
    if console.is_terminal or console.width >= LOG_WIDTH_COLUMNS:
        for table in tables:
            console.print(table)
        return
    # A log file has no width of its own (rich assumes 80): render the tables at a readable width
    # as plain text, then write those lines without wrapping or cropping them.
    buffer = io.StringIO()
    wide = Console(file=buffer, width=LOG_WIDTH_COLUMNS, color_system=None, force_terminal=False)
    for table in tables:
        wide.print(table)
    console.print(buffer.getvalue(), end="", soft_wrap=True, markup=False, highlight=False, emoji=False)


def metric_title(name: str, stats: MetricStats) -> str:
    """The human name of a metric with its unit, e.g. "Time to First Token (ms)"."""
    return METRIC_TITLES.get(name) or f"{name.replace('_', ' ').title()} ({stats.unit})"


def _metrics_table(metrics: RunMetrics, title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("Metric", justify="left", no_wrap=True)
    for stat in TABLE_STATS:
        table.add_column(stat, justify="right", no_wrap=True)
    for name, stats in metrics.metrics.items():
        row = stats.model_dump()
        table.add_row(metric_title(name, stats), *(format_number(row[stat]) for stat in TABLE_STATS))
    if not metrics.metrics:
        table.add_row("(no successful requests)", *("" for _ in TABLE_STATS))
    return table


def _run_table(metrics: RunMetrics) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("Run", justify="left", no_wrap=True)
    table.add_column("Value", justify="right", no_wrap=True)
    rows: list[tuple[str, str]] = [
        ("Request Throughput (req/s)", format_number(metrics.request_throughput)),
        ("Output Token Throughput (tokens/s)", format_number(metrics.output_token_throughput)),
        ("Total Token Throughput (tokens/s)", format_number(metrics.total_token_throughput)),
    ]
    optional_rows = (
        ("Achieved Request Rate (req/s)", metrics.achieved_request_rate),
        ("Scheduled Request Rate (req/s)", metrics.scheduled_request_rate),
        ("Goodput (req/s)", metrics.goodput),
    )
    rows.extend((label, format_number(value)) for label, value in optional_rows if value is not None)
    if metrics.good_request_fraction is not None:
        rows.append(("Good Requests (% of requests)", format_number(100 * metrics.good_request_fraction)))
    if metrics.goodput_slos:
        rows.append(("Goodput SLOs", " ".join(f"{name}:{slo:g}" for name, slo in metrics.goodput_slos.items())))
    rows += [
        ("Request Count", format_count(metrics.request_count)),
        ("Successes", format_count(metrics.success_count)),
        ("Errors", format_count(metrics.error_count)),
        ("Cancelled", format_count(metrics.cancelled_count)),
        ("Lost", format_count(metrics.lost_count)),
        ("Benchmark Duration (s)", format_number(metrics.benchmark_duration_s)),
    ]
    if metrics.nodes > 1:
        rows.append(("Nodes", format_count(metrics.nodes)))
    if metrics.clock_offset_bound_ms is not None:
        rows.append(("Clock Offset Bound (ms)", format_number(metrics.clock_offset_bound_ms)))
    if metrics.output_tokens_source:
        sources = ", ".join(f"{source} {count:,}" for source, count in metrics.output_tokens_source.items())
        rows.append(("Output Tokens From", sources))
    for label, value in rows:
        table.add_row(label, value)
    return table


def _nodes_table(metrics: RunMetrics) -> Table:
    nodes = metrics.by_node.values()
    columns = [c for c in _NODE_COLUMNS if not c.optional or any(c.value(node) is not None for node in nodes)]
    table = Table(title="By node", box=box.SIMPLE_HEAD)
    table.add_column("Node", justify="left", no_wrap=True)
    for column in columns:
        table.add_column(column.header, justify="right", no_wrap=True)
    for name, node in metrics.by_node.items():
        table.add_row(name, *(format_cell(column.value(node)) for column in columns))
    return table


def _errors_table(metrics: RunMetrics) -> Table:
    table = Table(title="Errors by type", box=box.SIMPLE_HEAD)
    table.add_column("Error Type", justify="left", no_wrap=True)
    table.add_column("Count", justify="right", no_wrap=True)
    table.add_column("Sample Message", justify="left", overflow="fold")
    for key, summary in metrics.errors_by_type.items():
        table.add_row(key, format_count(summary.count), summary.sample_message or "")
    return table


_SERVER_GAUGES = (
    ("num_requests_running", "Running Requests", 1.0),
    ("num_requests_waiting", "Waiting Requests", 1.0),
    ("kv_cache_usage_perc", "KV-Cache Usage (%)", 100.0),
)
_SERVER_COUNTERS = (
    ("prompt_tokens", "Prompt Tokens"),
    ("generation_tokens", "Generation Tokens"),
    ("num_preemptions", "Preemptions"),
)
_SERVER_HISTOGRAMS = (
    ("time_to_first_token", "Server TTFT, mean (ms)"),
    ("inter_token_latency", "Server ITL, mean (ms)"),
    ("e2e_request_latency", "Server Request Latency, mean (ms)"),
)


def _server_table(url: str, summary: Mapping[str, Any]) -> Table:
    """The server's view of the run: counter increases, gauges (mean, p50, p99, max) and
    histogram means; rows the server did not export are left out."""
    table = Table(title=f"Server metrics: {url}", box=box.SIMPLE_HEAD)
    table.add_column("Server", justify="left", no_wrap=True)
    table.add_column("Value", justify="right", no_wrap=True)
    counters = summary.get("counters") or {}
    for key, label in _SERVER_COUNTERS:
        if key in counters:
            table.add_row(label, format_count(int(counters[key])))
    if summary.get("prefix_cache_hit_rate") is not None:
        table.add_row("Prefix-Cache Hit Rate (%)", format_number(100 * summary["prefix_cache_hit_rate"]))
    success = summary.get("request_success") or {}
    if success:
        by_reason = ", ".join(f"{reason} {int(count):,}" for reason, count in success.items() if count)
        total = f"{int(sum(success.values())):,}"
        table.add_row("Requests Succeeded", f"{total} ({by_reason})" if by_reason else total)
    gauges = summary.get("gauges") or {}
    for key, label, scale in _SERVER_GAUGES:
        if key in gauges:
            stats = gauges[key]
            parts = (f"{stat} {format_number(scale * stats[stat])}" for stat in ("mean", "p50", "p99", "max"))
            table.add_row(label, "  ".join(parts))
    histograms = summary.get("histograms_ms") or {}
    for key, label in _SERVER_HISTOGRAMS:
        if key in histograms:
            table.add_row(label, format_number(histograms[key].get("mean")))
    table.add_row("Scrapes (failed)", f"{summary.get('scrapes', 0):,} ({summary.get('scrape_errors', 0):,})")
    return table


def format_number(value: float | None) -> str:
    """A figure with two decimals and thousands separators; "n/a" for None."""
    return "n/a" if value is None else f"{value:,.2f}"


def format_count(value: int) -> str:
    """A count with thousands separators."""
    return f"{value:,}"


def format_cell(value: float | int | None) -> str:
    """A count as `format_count`, anything else as `format_number`."""
    return format_count(value) if isinstance(value, int) else format_number(value)
