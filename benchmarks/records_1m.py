"""Post-processing a million records: a synthetic `records.jsonl` and the timing of reading it back.

The file has the shape the records service writes (`RequestRecord.model_dump(mode="json")` per line):
successful streamed requests of 16 output tokens spread over 8 workers on 2 nodes, every 1,000th one
an HTTP 500 error. It is generated once, deterministically, and kept (about 400 MB) for later runs.

Two steps, each in a fresh interpreter, each printing one JSON line:
- `python -m benchmarks.records_1m spool RECORDS SPOOL` spools the records into column frames as
  the records service does while a run goes, timing that work (`spool_us_per_record`);
- `python -m benchmarks.records_1m time RECORDS SPOOL` times the end of a run, `read_spool` +
  `metrics_of_columns` (`read_s`, `compute_s`, `total_s`, and `cpu_s`, the CPU time of this process
  and its children, which says more than wall time on a busy machine), then `read_record_columns`
  of RECORDS, which is what `aiperf-hpc recompute` reads (`jsonl_read_s`; it reads a large file in
  parallel parts).
"""

from __future__ import annotations

import random
import resource
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

RECORD_COUNT = 1_000_000
OUTPUT_TOKENS = 16
# Part of the file name: change it whenever the records' shape changes.
GENERATOR_VERSION = 1
_LINES_PER_WRITE = 10_000
SPOOL_BATCH = 1  # records per batch into the spool: a worker sends each record in a message of its own


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


def build_spool(records_path: Path, spool_path: Path) -> dict[str, float]:
    """Spool the records of `records_path` as the records service does while a run goes (batches of
    `SPOOL_BATCH` dicts into a `ColumnsSpool`), and the time that took, which the service spends
    during the run instead of at its end. Decoding the lines is not timed: the service has the
    dicts already, for the lines it writes."""
    from aiperf_hpc.results.columns_spool import ColumnsSpool

    spool = ColumnsSpool(spool_path)
    spooled_s = 0.0
    count = 0
    with records_path.open("rb") as lines:
        while batch := [orjson.loads(line) for line in islice(lines, SPOOL_BATCH)]:
            started_s = time.perf_counter()
            spool.add(batch)
            spooled_s += time.perf_counter() - started_s
            count += len(batch)
    started_s = time.perf_counter()
    spool.flush()
    spooled_s += time.perf_counter() - started_s
    return {"spool_s": spooled_s, "spool_us_per_record": spooled_s / count * 1e6}


def time_post_processing(records_path: Path, spool_path: Path) -> dict[str, float]:
    """Seconds for the end of a run: reading the spool and computing the run's metrics from it; then
    the same from `records.jsonl` (what `aiperf-hpc recompute` does), and the record count."""
    from aiperf_hpc.core.metrics import metrics_of_columns
    from aiperf_hpc.results.columns_spool import read_spool
    from aiperf_hpc.results.records_jsonl import read_record_columns

    cpu_started_s = _cpu_s()
    started_s = time.perf_counter()
    columns = read_spool(spool_path)
    read_s = time.perf_counter() - started_s
    started_s = time.perf_counter()
    metrics = metrics_of_columns(columns)
    compute_s = time.perf_counter() - started_s
    cpu_s = _cpu_s() - cpu_started_s
    started_s = time.perf_counter()
    from_jsonl = read_record_columns(records_path).columns
    jsonl_read_s = time.perf_counter() - started_s
    if from_jsonl.request_count != columns.request_count:
        raise SystemExit(f"the spool has {columns.request_count} records, records.jsonl {from_jsonl.request_count}")
    return {
        "read_s": read_s,
        "compute_s": compute_s,
        "total_s": read_s + compute_s,
        "cpu_s": cpu_s,
        "jsonl_read_s": jsonl_read_s,
        "records": float(columns.request_count),
        "request_count": float(metrics.request_count),
    }


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    mode, records, spool = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    figures = build_spool(records, spool) if mode == "spool" else time_post_processing(records, spool)
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")
