"""A run's results from its `records.jsonl`: metrics, self-check, `profile_export.json` and `.csv`.

One function, `write_results`, turns a run directory's records into its exports. The records
service calls it when the run ends; `aiperf-hpc recompute DIR` calls it afterwards, for a run whose
records service died before it could (or to recompute with today's code). What the records do not
hold comes from `run_config.json`, which the records service writes when it is configured: the
redacted config (goodput SLOs among it), the seed, the worker count, the host, Slurm allocation and
versions. So a run directory is complete once `records.jsonl` and `run_config.json` are in it.

```
run_config.json       written at configure time (atomically): {"config": ..., "random_seed": ...,
                      "workers": ..., "started_wall_ns": ..., "hostname": ..., "slurm": ..., "versions": ...}
profile_export.json   metadata = validity, status, missing_records, torn_record_lines, the above,
                      dataset, finished_wall_ns (+ "recomputed": true when written by recompute)
```
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from aiperf_hpc import __version__
from aiperf_hpc.artifacts import (
    PROFILE_EXPORT_CSV_FILE,
    PROFILE_EXPORT_FILE,
    RECORDS_FILE,
    RUN_CONFIG_FILE,
    SERVER_METRICS_FILE,
    SPOOL_FILE,
)
from aiperf_hpc.config import RunConfig
from aiperf_hpc.core.metrics import RunMetrics, metrics_of_columns
from aiperf_hpc.core.record_columns import RecordColumns
from aiperf_hpc.core.server_metrics import profiling_window_of_columns, summarize_server_metrics
from aiperf_hpc.core.validity import Validity, assess_validity
from aiperf_hpc.errors import RunError
from aiperf_hpc.results.atomic import write_bytes_atomically
from aiperf_hpc.results.csv_export import write_profile_export_csv
from aiperf_hpc.results.json_export import read_json_object, write_profile_export_json
from aiperf_hpc.results.records_jsonl import ColumnsRead, read_record_columns, read_records_jsonl
from aiperf_hpc.results.server_metrics_jsonl import read_server_metrics_jsonl
from aiperf_hpc.results.time_slices import write_time_slices


@dataclass(frozen=True)
class RunEnd:
    """What only the end of a run knows. None where it is not known (a recompute after a crash)."""

    status: str
    missing_records: int | None = None
    dataset: Mapping[str, Any] = field(default_factory=dict)
    max_loop_lag_ms: float | None = None
    finished_wall_ns: int | None = None
    recomputed: bool = False


@dataclass(frozen=True)
class Results:
    metrics: RunMetrics
    validity: Validity
    export_path: Path
    torn_record_lines: int
    server_metrics: dict[str, dict[str, Any]]


def run_config_metadata(config: RunConfig, started_wall_ns: int) -> dict[str, Any]:
    """What is known of a run when it is configured, as `run_config.json` holds it."""
    return {
        "config": config.redacted(),
        "random_seed": config.inputs.random_seed,
        "workers": config.worker_count,
        "started_wall_ns": started_wall_ns,
        "hostname": socket.gethostname(),
        "slurm": _slurm_metadata(),
        "versions": _versions(),
    }


def write_run_config(run_dir: Path, run_config: Mapping[str, Any]) -> None:
    """Write `run_dir/run_config.json`, replacing it atomically. Raises OSError on write failure."""
    write_bytes_atomically(run_dir / RUN_CONFIG_FILE, orjson.dumps(dict(run_config), option=orjson.OPT_INDENT_2))


def write_results(
    run_dir: Path, run_config: Mapping[str, Any], end: RunEnd, columns: RecordColumns | None = None
) -> Results:
    """Compute the metrics of `run_dir/records.jsonl` and write `profile_export.json` and `.csv`.

    `run_config` is `run_config.json`'s content (an empty mapping when unknown: no goodput).
    `columns` are the records as columns when the caller has them already (the records service's
    spool, which holds exactly the lines it wrote); else the file is read, and torn or undecodable
    lines are skipped and counted in the metadata. Raises OSError when the records cannot be read
    or the exports written, UsageError when the config's goodput SLOs are invalid.
    """
    if columns is None:
        loaded = read_record_columns(run_dir / RECORDS_FILE)
    else:
        loaded = ColumnsRead(columns=columns, skipped_lines=0, first_skipped_line=None)
    metrics = metrics_of_columns(loaded.columns, goodput=_goodput(run_config) or None)
    workers = run_config.get("workers")
    validity = assess_validity(
        metrics, max_loop_lag_ms=end.max_loop_lag_ms, workers=workers if isinstance(workers, int) else None
    )
    metadata_ = {
        "validity": validity.as_dict(),
        "status": end.status,
        "missing_records": end.missing_records,
        "torn_record_lines": loaded.skipped_lines,
        **run_config,
        "dataset": dict(end.dataset),
        "finished_wall_ns": end.finished_wall_ns,
    }
    if end.recomputed:
        metadata_["recomputed"] = True
    server_metrics = summarize_server_metrics(
        read_server_metrics_jsonl(run_dir / SERVER_METRICS_FILE), profiling_window_of_columns(loaded.columns)
    )
    export_path = run_dir / PROFILE_EXPORT_FILE
    write_profile_export_json(export_path, metrics, metadata_, server_metrics=server_metrics)
    write_profile_export_csv(run_dir / PROFILE_EXPORT_CSV_FILE, metrics)
    slice_duration_s = _config_value(run_config, "metrics", "slice_duration_s")
    if isinstance(slice_duration_s, int | float):  # opt-in: the windows need the records themselves
        write_time_slices(run_dir, read_records_jsonl(run_dir / RECORDS_FILE).records, float(slice_duration_s))
    return Results(
        metrics=metrics,
        validity=validity,
        export_path=export_path,
        torn_record_lines=loaded.skipped_lines,
        server_metrics=server_metrics,
    )


def recompute(run_dir: Path) -> Results:
    """Rebuild `run_dir`'s exports from `records.jsonl` and `run_config.json` (`aiperf-hpc recompute`).

    What only the end of the run knew is taken from an existing `profile_export.json` when there is
    one (its status, dataset, missing records, end time), else it is unknown: status "unknown".
    Without `run_config.json` the metrics are computed without goodput. The worker event-loop lag
    is not in the records, so the self-check judges send lag and rate only.
    Raises RunError when `records.jsonl` is missing or unreadable or a JSON file is not a JSON object.
    """
    records_path = run_dir / RECORDS_FILE
    if not records_path.is_file():
        raise RunError(f"no {RECORDS_FILE} in {run_dir}: not a run's artifact directory")
    run_config = _read_object(run_dir / RUN_CONFIG_FILE) or {}
    previous = _read_object(run_dir / PROFILE_EXPORT_FILE) or {}
    before = previous.get("metadata")
    before = before if isinstance(before, dict) else {}
    missing = before.get("missing_records")
    dataset = before.get("dataset")
    finished = before.get("finished_wall_ns")
    end = RunEnd(
        status=str(before.get("status", "unknown")),
        missing_records=missing if isinstance(missing, int) else None,
        dataset=dataset if isinstance(dataset, dict) else {},
        finished_wall_ns=finished if isinstance(finished, int) else None,
        recomputed=True,
    )
    # A records service that died left its spool behind: the records are read from the file.
    (run_dir / SPOOL_FILE).unlink(missing_ok=True)
    try:
        return write_results(run_dir, run_config, end)
    except OSError as exc:
        raise RunError(f"cannot recompute {run_dir}: {exc.strerror or exc}") from None


def _goodput(run_config: Mapping[str, Any]) -> dict[str, float]:
    goodput = _config_value(run_config, "metrics", "goodput")
    return dict(goodput) if isinstance(goodput, dict) else {}


def _config_value(run_config: Mapping[str, Any], section: str, name: str) -> Any:
    """`run_config.json`'s `config.SECTION.NAME`, None where any part is missing."""
    config = run_config.get("config")
    values = config.get(section) if isinstance(config, dict) else None
    return values.get(name) if isinstance(values, dict) else None


def _read_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`; None when the file does not exist. Raises RunError otherwise."""
    return read_json_object(path) if path.exists() else None


def _slurm_metadata() -> dict[str, str] | None:
    """The allocation the run ran in (job id, node list, tasks, partition), when there was one."""
    names = ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_NTASKS", "SLURM_JOB_PARTITION", "SLURM_CLUSTER_NAME")
    found = {name.removeprefix("SLURM_").lower(): os.environ[name] for name in names if name in os.environ}
    return found or None


def _versions() -> dict[str, str]:
    versions = {"aiperf_hpc": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("aiohttp", "pyzmq", "numpy", "pydantic", "orjson", "uvloop"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions
