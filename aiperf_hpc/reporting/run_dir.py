"""Reading a run's artifact directory: `profile_export.json` and what the reporting tools show of it.

A run directory holds `profile_export.json` (see `results.json_export` for its layout) and
`records.jsonl`; a sweep directory holds `sweep_summary.json` and one run directory per point,
named by the point's label. Every reader here raises `RunError` with one line naming the file when
it is unreadable or not the JSON object it should be.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

Document = dict[str, Any]


def section(document: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    """`document[k1][k2]...`, or an empty mapping where a key is absent or not an object, so older
    or partial exports read as "unknown" rather than failing."""
    value: Any = document
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def number(value: Any) -> float | int | None:
    """`value` when it is a number (not a bool), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def metric_stat(document: Mapping[str, Any], metric: str, stat: str) -> float | None:
    """One statistic of `metrics[metric]` (e.g. "time_to_first_token", "p50"); None when absent."""
    value = number(section(document, "metrics", metric).get(stat))
    return None if value is None else float(value)


def run_figure(document: Mapping[str, Any], name: str) -> float | int | None:
    """A run-level figure (`run[name]`, e.g. "request_throughput"); None when absent or null."""
    return number(section(document, "run").get(name))


def describe_load(load: Mapping[str, Any]) -> str:
    """The load of `metadata.config.load` in a few words: "concurrency 16", "poisson 10 req/s (cap
    4)", "fixed schedule x2"; "unknown" when the config is missing."""
    if not load:
        return "unknown"
    if load.get("fixed_schedule"):
        return f"fixed schedule x{load.get('fixed_schedule_speedup', 1.0):g}"
    rate = number(load.get("request_rate"))
    concurrency = number(load.get("concurrency"))
    if rate is not None:
        cap = f" (cap {concurrency})" if concurrency is not None else ""
        return f"{load.get('request_rate_mode', 'poisson')} {rate:g} req/s{cap}"
    return f"concurrency {concurrency if concurrency is not None else 1}"


def format_wall_ns(wall_ns: int | None) -> str | None:
    """A wall-clock time in ns since the epoch as ISO 8601 UTC to the second ("2026-01-02T03:04:05Z")."""
    if wall_ns is None:
        return None
    moment = datetime.datetime.fromtimestamp(wall_ns / 1e9, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
