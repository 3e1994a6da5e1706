"""Post-processing a million records: a synthetic `records.jsonl` and the timing of reading it back.

The file has the shape the records service writes (`RequestRecord.model_dump(mode="json")` per line):
successful streamed requests of 16 output tokens spread over 8 workers on 2 nodes, every 1,000th one
an HTTP 500 error. It is generated once, deterministically, and kept (about 400 MB) for later runs.

The timing runs in a fresh interpreter (`python -m benchmarks.records_1m PATH`), as the CLI's post-
processing does: `read_record_columns` (which reads a large file in parallel parts) +
`metrics_of_columns`, each timed with `perf_counter`, printed as one JSON line, with the CPU time of
this process and its children (`cpu_s`), which says more than wall time on a busy machine.
"""

from __future__ import annotations

import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import orjson

RECORD_COUNT = 1_000_000
OUTPUT_TOKENS = 16
# Part of the file name: change it whenever the records' shape changes.
GENERATOR_VERSION = 1
_LINES_PER_WRITE = 10_000


def synthetic_record(index: int, rng: random.Random, start_wall_ns: int) -> dict[str, Any]:
    worker = index % 8
    ttft_ns = 20_000_000 + rng.randrange(5_000_000)
    itl_ns = 5_000_000
    times = [ttft_ns + k * itl_ns + rng.randrange(100_000) for k in range(OUTPUT_TOKENS)]
    failed = index % 1000 == 999
    return {
        "credit_id": index,
        "phase": "profiling",
        "worker_id": f"worker-{worker}",
        "node": f"node{worker % 2:03d}",
        "conversation_index": index % 100,
        "turn_index": 0,
        "scheduled_wall_ns": None,
        "started_wall_ns": start_wall_ns + index * 1_000_000,
        "latency_ns": None if failed else times[-1] + 50_000,
        "response_times_ns": [] if failed else times,
        "status_code": 500 if failed else 200,
        "error_type": "http_error" if failed else None,
        "error_message": "Internal Server Error" if failed else None,
        "input_tokens": 32,
        "output_tokens": None if failed else OUTPUT_TOKENS,
        "output_tokens_source": None if failed else "usage",
        "clock_offset_ns": 1_000 * (worker % 2),
        "clock_offset_bound_ns": 50_000,
    }


def ensure_records_file(cache_dir: Path, count: int = RECORD_COUNT) -> Path:
    """The path of the synthetic file of `count` records, written first when missing."""
    path = cache_dir / f"records-{count}-v{GENERATOR_VERSION}.jsonl"
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    rng = random.Random(0)
    start_wall_ns = 1_700_000_000_000_000_000
    with partial.open("wb") as out:
        for first in range(0, count, _LINES_PER_WRITE):
            lines = [
                orjson.dumps(synthetic_record(index, rng, start_wall_ns))
                for index in range(first, min(first + _LINES_PER_WRITE, count))
            ]
            out.write(b"\n".join(lines) + b"\n")
    partial.rename(path)
    return path


def time_post_processing(path: Path) -> dict[str, float]:
    """Seconds to read `path` and to compute the run's metrics from it, and the record count."""
    from aiperf_hpc.core.metrics import metrics_of_columns
    from aiperf_hpc.exporters.records_jsonl import read_record_columns

    cpu_started_s = _cpu_s()
    started_s = time.perf_counter()
    columns = read_record_columns(path).columns
    read_s = time.perf_counter() - started_s
    started_s = time.perf_counter()
    metrics = metrics_of_columns(columns)
    compute_s = time.perf_counter() - started_s
    return {
        "read_s": read_s,
        "compute_s": compute_s,
        "total_s": read_s + compute_s,
        "cpu_s": _cpu_s() - cpu_started_s,
        "records": float(columns.request_count),
        "request_count": float(metrics.request_count),
    }


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    sys.stdout.write(orjson.dumps(time_post_processing(Path(sys.argv[1]))).decode() + "\n")
