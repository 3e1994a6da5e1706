"""`profile_export.csv`: the metrics table, a blank line, the run-level figures, a blank line and
the figures by node, and, when any request failed, a blank line and the errors by type.

```
Metric,Unit,avg,min,max,std,p1,p5,p10,p25,p50,p75,p90,p95,p99,count
time_to_first_token,ms,12.5,...,3
<blank>
Metric,Value
request_count,10
...
output_tokens_source:usage,98           (one row per source)
goodput_slo:time_to_first_token,200.0   (one row per SLO, with --goodput)
<blank>
Node,Workers,Requests,Successes,Errors,Cancelled,Lost,Request Throughput,...,Latency p99  (NODES_HEADER)
node001,4,500,498,1,0,1,24.9,...        (one row per node, sorted by name)
<blank>
Error Type,Count,Sample Message
http_error:500,2,...
```

Metric names are the keys of `profile_export.json`. A figure that could not be computed (no
duration, no schedule) is an empty cell. In the node table throughputs are per second and send lag
and latency in milliseconds, as in `profile_export.json`'s "by_node".
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from aiperf_hpc.core.metrics import PERCENTILES, RunMetrics
from aiperf_hpc.core.node_metrics import NodeMetrics
from aiperf_hpc.results.atomic import write_bytes_atomically

STAT_COLUMNS: tuple[str, ...] = ("avg", "min", "max", "std", *(f"p{p}" for p in PERCENTILES), "count")
METRICS_HEADER: tuple[str, ...] = ("Metric", "Unit", *STAT_COLUMNS)
RUN_HEADER: tuple[str, ...] = ("Metric", "Value")
ERRORS_HEADER: tuple[str, ...] = ("Error Type", "Count", "Sample Message")
NODES_HEADER: tuple[str, ...] = (
    "Node",
    "Workers",
    "Requests",
    "Successes",
    "Errors",
    "Cancelled",
    "Lost",
    "Request Throughput",
    "Output Token Throughput",
    "Send Lag p50",
    "Send Lag p99",
    "Latency p50",
    "Latency p99",
)


def profile_export_csv_text(metrics: RunMetrics) -> str:
    """The CSV document as text (what `write_profile_export_csv` writes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRICS_HEADER)
    for name, stats in metrics.metrics.items():
        row = stats.model_dump()
        writer.writerow([name, stats.unit, *(row[column] for column in STAT_COLUMNS)])
    writer.writerow([])
    writer.writerow(RUN_HEADER)
    for name, value in metrics.run_figures().items():
        writer.writerow([name, "" if value is None else value])
    for source, count in metrics.output_tokens_source.items():
        writer.writerow([f"output_tokens_source:{source}", count])
    for name, slo in (metrics.goodput_slos or {}).items():
        writer.writerow([f"goodput_slo:{name}", slo])
    if metrics.by_node:
        writer.writerow([])
        writer.writerow(NODES_HEADER)
        for node, figures in metrics.by_node.items():
            writer.writerow([node, *("" if value is None else value for value in _node_row(figures))])
    if metrics.errors_by_type:
        writer.writerow([])
        writer.writerow(ERRORS_HEADER)
        for key, summary in metrics.errors_by_type.items():
            writer.writerow([key, summary.count, summary.sample_message or ""])
    return buffer.getvalue()


def _node_row(figures: NodeMetrics) -> tuple[int | float | None, ...]:
    """One node's figures in the order of `NODES_HEADER` (after "Node")."""
    return (
        figures.workers,
        figures.request_count,
        figures.success_count,
        figures.error_count,
        figures.cancelled_count,
        figures.lost_count,
        figures.request_throughput,
        figures.output_token_throughput,
        figures.send_lag_p50_ms,
        figures.send_lag_p99_ms,
        figures.request_latency_p50_ms,
        figures.request_latency_p99_ms,
    )


def write_profile_export_csv(path: Path, metrics: RunMetrics) -> None:
    """Write `profile_export.csv` to `path`, replacing it atomically. Raises OSError on write failure."""
    write_bytes_atomically(path, profile_export_csv_text(metrics).encode("utf-8"))
