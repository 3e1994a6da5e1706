"""Small finished-run directories written by the real exporters, for the reporting tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from aiperf_hpc.config import EndpointConfig, LoadConfig, RunConfig
from aiperf_hpc.core.metrics import RunMetrics, compute_metrics
from aiperf_hpc.protocol.messages import RequestRecord
from aiperf_hpc.results.json_export import write_profile_export_json
from aiperf_hpc.results.sweep import write_sweep_summary

MS = 1_000_000
BASE_WALL_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
ENDPOINT_URL = "http://127.0.0.1:8000"


def run_records(
    *, count: int, spacing_ms: int, latency_ms: int, ttft_step_ms: int, scheduled: bool = False, error: bool = True
) -> list[dict[str, Any]]:
    """`count` streaming successes started every `spacing_ms`, each `latency_ms` long with 11 output
    tokens and a TTFT of (i + 1) * `ttft_step_ms`, alternating between nodes n0 and n1; one HTTP 500
    at 50 ms when `error`; one warmup record (never counted). With `scheduled`, request i was due
    i ms before it left (send lag i ms)."""
    records = [
        RequestRecord(
            credit_id=1000, phase="warmup", worker_id="w0", node="n0", conversation_index=0,
            started_wall_ns=BASE_WALL_NS - 10_000 * MS, latency_ns=9_000 * MS,
        )
    ]  # fmt: skip
    for i in range(count):
        started_ns = BASE_WALL_NS + i * spacing_ms * MS
        ttft_ms = (i + 1) * ttft_step_ms
        records.append(
            RequestRecord(
                credit_id=i,
                phase="profiling",
                worker_id=f"w{i % 2}",
                node=f"n{i % 2}",
                conversation_index=i,
                scheduled_wall_ns=started_ns - i * MS if scheduled else None,
                started_wall_ns=started_ns,
                latency_ns=latency_ms * MS,
                response_times_ns=[ttft_ms * MS, (ttft_ms + 1) * MS, latency_ms * MS],
                status_code=200,
                input_tokens=100,
                output_tokens=11,
                output_tokens_source="usage",
            )
        )
    if error:
        records.append(
            RequestRecord(
                credit_id=count, phase="profiling", worker_id="w0", node="n0", conversation_index=count,
                started_wall_ns=BASE_WALL_NS + 50 * MS, latency_ns=10 * MS, status_code=500,
                error_type="http_error", error_message="boom",
            )
        )  # fmt: skip
    return [record.model_dump(mode="json") for record in records]


def write_run_dir(
    run_dir: Path,
    records: list[dict[str, Any]],
    *,
    load: LoadConfig,
    job_id: str | None = None,
    started_wall_ns: int = BASE_WALL_NS,
) -> RunMetrics:
    """Write records.jsonl and profile_export.json (with metadata like the records service's) to `run_dir`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "records.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    metrics = compute_metrics(records)
    config = RunConfig(
        endpoint=EndpointConfig(model="mock-model", url=ENDPOINT_URL, endpoint_type="chat", streaming=True), load=load
    )
    metadata = {
        "validity": {"valid": True, "warnings": []},
        "status": "completed",
        "config": config.redacted(),
        "workers": 2,
        "started_wall_ns": started_wall_ns,
        "finished_wall_ns": started_wall_ns + 1_000 * MS,
        "hostname": "login01",
        "slurm": None if job_id is None else {"job_id": job_id, "job_nodelist": "n[0-1]"},
        "versions": {"aiperf_hpc": "0.1.0"},
    }
    write_profile_export_json(run_dir / "profile_export.json", metrics, metadata)
    return metrics


def write_baseline_run(run_dir: Path) -> RunMetrics:
    """Concurrency 4: four successes over 0.5 s (8 req/s), TTFT p50 25 ms, ITL p50 17.5 ms, latency 200 ms, 1 error."""
    records = run_records(count=4, spacing_ms=100, latency_ms=200, ttft_step_ms=10)
    return write_run_dir(run_dir, records, load=LoadConfig(concurrency=4))


def write_faster_run(run_dir: Path) -> RunMetrics:
    """Poisson 20 req/s: eight successes over 0.5 s (16 req/s), TTFT p50 22.5 ms, latency 150 ms, send lag."""
    records = run_records(count=8, spacing_ms=50, latency_ms=150, ttft_step_ms=5, scheduled=True, error=False)
    return write_run_dir(
        run_dir, records, load=LoadConfig(request_rate=20.0), job_id="4242", started_wall_ns=BASE_WALL_NS + 3600 * 10**9
    )


def write_sweep_dir(sweep_dir: Path) -> None:
    """A two-point concurrency sweep: concurrency1 and concurrency4, with sweep_summary.json."""
    rows = []
    for label, count in (("concurrency1", 2), ("concurrency4", 6)):
        records = run_records(count=count, spacing_ms=100, latency_ms=200, ttft_step_ms=10, error=False)
        concurrency = int(label.removeprefix("concurrency"))
        rows.append((label, write_run_dir(sweep_dir / label, records, load=LoadConfig(concurrency=concurrency))))
    write_sweep_summary(sweep_dir / "sweep_summary.json", sweep_dir / "sweep_summary.csv", rows)
