"""The server's own view of a run, from its Prometheus `/metrics` (vLLM's names): parsing and summary.

A scrape is reduced to the few values we summarise (`parse_metrics_text`), summed over label sets
(several engines of one server, several models), except the success counter, which is kept per
`finished_reason`, and the KV-cache usage, which is averaged (each engine's usage is a fraction of
its own cache). Older vLLM names are read as the current ones (`vllm:gpu_cache_usage_perc`,
`vllm:time_per_output_token_seconds`).

A scrape is stored as one line of `server_metrics.jsonl` (the shape of `ScrapeLine`):

    {"url": ..., "started_wall_ns": ..., "wall_ns": ..., "values": {"vllm:prompt_tokens_total": 1234.0, ...}}

or, when it failed, `"error": "..."` instead of `"values"`. `started_wall_ns` is when the GET was
sent, `wall_ns` when the answer was in.

`summarize_server_metrics` turns the lines into one summary per URL for the profiling window:

- counters: the increase from the last scrape answered before the window began to the first scrape
  sent after it ended (the first and last scrapes when there are none such), across counter resets
  as Prometheus' `increase()` does; the prefix-cache hit rate is hits / queries of those increases;
- gauges: mean, max, p50 and p99 over the scrapes sent inside the window (all scrapes when none was);
- histograms: the mean over the window, increase of `_sum` / increase of `_count`, in ms.

A value the server does not export is left out, never reported as 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from aiperf_hpc.core.record_columns import MISSING, OUTCOME_LOST, RecordColumns

_PREFIX = "vllm:"

GAUGES: tuple[str, ...] = ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc")
COUNTERS: tuple[str, ...] = (
    "prompt_tokens",
    "generation_tokens",
    "num_preemptions",
    "prefix_cache_queries",
    "prefix_cache_hits",
)
HISTOGRAMS: tuple[str, ...] = (
    "time_to_first_token_seconds",
    "inter_token_latency_seconds",
    "e2e_request_latency_seconds",
)
SUCCESS_COUNTER = f"{_PREFIX}request_success_total"
_SUCCESS_PREFIX = f'{SUCCESS_COUNTER}{{finished_reason="'

# Sample name -> the key it is stored under; gauges averaged rather than summed over label sets.
_WANTED: dict[str, str] = {
    **{f"{_PREFIX}{name}": f"{_PREFIX}{name}" for name in GAUGES},
    f"{_PREFIX}gpu_cache_usage_perc": f"{_PREFIX}kv_cache_usage_perc",
    **{f"{_PREFIX}{name}_total": f"{_PREFIX}{name}_total" for name in COUNTERS},
    **{f"{_PREFIX}{name}_{part}": f"{_PREFIX}{name}_{part}" for name in HISTOGRAMS for part in ("sum", "count")},
    **{
        f"{_PREFIX}time_per_output_token_seconds_{part}": f"{_PREFIX}inter_token_latency_seconds_{part}"
        for part in ("sum", "count")
    },
}
_AVERAGED = frozenset({f"{_PREFIX}kv_cache_usage_perc"})

ScrapeLine = Mapping[str, Any]


class NotPrometheusText(ValueError):
    """The text is not Prometheus exposition text (or holds no metric at all)."""


def parse_metrics_text(text: str) -> dict[str, float]:
    """The values we summarise from one `/metrics` answer, keyed by metric name (vLLM's current
    names); success counts under `vllm:request_success_total{finished_reason="stop"}` and the like.

    Raises NotPrometheusText when the text does not parse or defines no metric family.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    families = 0
    try:
        for family in text_string_to_metric_families(text):
            families += 1
            for sample in family.samples:
                if sample.name == SUCCESS_COUNTER:
                    key = success_key(sample.labels.get("finished_reason", "unknown"))
                else:
                    found = _WANTED.get(sample.name)
                    if found is None:
                        continue
                    key = found
                sums[key] = sums.get(key, 0.0) + float(sample.value)
                counts[key] = counts.get(key, 0) + 1
    except (ValueError, IndexError, KeyError, TypeError) as exc:  # the parser's ways to refuse a line
        raise NotPrometheusText(f"not Prometheus text: {exc}") from None
    if families == 0:
        raise NotPrometheusText("no metric in the answer")
    return {key: total / counts[key] if key in _AVERAGED else total for key, total in sums.items()}


def success_key(finished_reason: str) -> str:
    """The key of the success count of one finish reason."""
    return f'{_SUCCESS_PREFIX}{finished_reason}"}}'


def profiling_window_ns(records: Iterable[Mapping[str, Any]]) -> tuple[int, int] | None:
    """(first start, last end) of the profiling records in wall-clock ns; None without any.
    A record without a latency ends where it started."""
    start_ns: int | None = None
    end_ns: int | None = None
    for record in records:
        started = record.get("started_wall_ns")
        if record.get("phase") != "profiling" or record.get("error_type") == "lost" or not isinstance(started, int):
            continue
        latency = record.get("latency_ns")
        ended = started + (latency if isinstance(latency, int) else 0)
        start_ns = started if start_ns is None else min(start_ns, started)
        end_ns = ended if end_ns is None else max(end_ns, ended)
    return None if start_ns is None or end_ns is None else (start_ns, end_ns)


def profiling_window_of_columns(columns: RecordColumns) -> tuple[int, int] | None:
    """`profiling_window_ns` of records already in columns (profiling records only, by construction)."""
    kept = (columns.outcome != OUTCOME_LOST) & (columns.started_wall_ns != MISSING)
    if not kept.any():
        return None
    started = columns.started_wall_ns[kept]
    ended = started + np.maximum(columns.latency_ns[kept], 0)  # MISSING (-1) latency: ends where it started
    return int(started.min()), int(ended.max())


def summarize_server_metrics(
    lines: Sequence[ScrapeLine], window_ns: tuple[int, int] | None
) -> dict[str, dict[str, Any]]:
    """One summary per URL, in order of first appearance (see the module docstring)."""
    by_url: dict[str, list[ScrapeLine]] = {}
    for line in lines:
        by_url.setdefault(str(line.get("url")), []).append(line)
    return {url: _summarize_url(url_lines, window_ns) for url, url_lines in by_url.items()}


def _summarize_url(lines: list[ScrapeLine], window_ns: tuple[int, int] | None) -> dict[str, Any]:
    answered = sorted(
        (line for line in lines if isinstance(line.get("values"), Mapping)), key=lambda line: line["started_wall_ns"]
    )
    summary: dict[str, Any] = {"scrapes": len(answered), "scrape_errors": len(lines) - len(answered)}
    if not answered:
        return summary
    first, last = 0, len(answered) - 1
    inside = answered
    if window_ns is not None:
        start_ns, end_ns = window_ns
        before = [i for i, line in enumerate(answered) if line["wall_ns"] <= start_ns]
        after = [i for i, line in enumerate(answered) if line["started_wall_ns"] >= end_ns]
        first = before[-1] if before else 0
        last = after[0] if after else last
        inside = [line for line in answered if start_ns <= line["started_wall_ns"] <= end_ns] or answered
    span = answered[first : last + 1]
    summary["window_s"] = (span[-1]["started_wall_ns"] - span[0]["wall_ns"]) / 1e9
    increases = {key: _increase(span, key) for key in _keys(span)}
    summary["counters"] = {name: increases[key] for name in COUNTERS if (key := f"{_PREFIX}{name}_total") in increases}
    queries = summary["counters"].get("prefix_cache_queries")
    hits = summary["counters"].get("prefix_cache_hits")
    summary["prefix_cache_hit_rate"] = hits / queries if queries and hits is not None else None
    summary["request_success"] = {
        key.removeprefix(_SUCCESS_PREFIX).removesuffix('"}'): value
        for key, value in increases.items()
        if key.startswith(_SUCCESS_PREFIX)
    }
    summary["gauges"] = {
        name: _gauge_stats(values)
        for name in GAUGES
        if (values := [line["values"][f"{_PREFIX}{name}"] for line in inside if f"{_PREFIX}{name}" in line["values"]])
    }
    summary["histograms_ms"] = {}
    for name in HISTOGRAMS:
        total_s = increases.get(f"{_PREFIX}{name}_sum")
        count = increases.get(f"{_PREFIX}{name}_count")
        if total_s is not None and count is not None:
            label = name.removesuffix("_seconds")
            summary["histograms_ms"][label] = {"mean": total_s * 1000.0 / count if count else None, "count": count}
    return summary


def _keys(span: Sequence[ScrapeLine]) -> list[str]:
    """Every cumulative key of the span: counters, success counts and histogram sums and counts."""
    keys: dict[str, None] = {}
    for line in span:
        for key in line["values"]:
            if key.endswith(("_total", "_sum", "_count")) or key.startswith(_SUCCESS_PREFIX):
                keys[key] = None
    return list(keys)


def _increase(span: Sequence[ScrapeLine], key: str) -> float:
    """How much a counter grew over the span; a drop is a restart from zero, as in Prometheus. A
    counter the first scrape of the span lacks started there from zero (a label set appears with
    its first event: the first request that ended for a new reason)."""
    values = [line["values"][key] for line in span if key in line["values"]]
    if key not in span[0]["values"]:
        values.insert(0, 0.0)
    total = 0.0
    for previous, current in itertools.pairwise(values):
        total += current - previous if current >= previous else current
    return total


def _gauge_stats(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    p50, p99 = (float(v) for v in np.percentile(array, (50, 99)))
    return {"mean": float(array.mean()), "max": float(array.max()), "p50": p50, "p99": p99}
