"""RecordsManager: appends every record to `records.jsonl` as it arrives, then post-processes.

Each received batch is written and flushed before the next is read, so a crash of any process loses
nothing already received. Records are keyed by credit id: the first record of a credit wins (a
worker's real record, or the timing manager's `lost` record), a second is logged and dropped.
Accepted records also feed the run's live figures (`core.live_stats`), sent with the progress every
second for the live view and the live /metrics.

Post-processing is a stage of this service, not a process of its own: it runs once, after every
record is in, and reads back `records.jsonl`, so results can always be recomputed from that file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import socket
import sys
import time
from collections.abc import Coroutine
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import orjson
import zmq

from aiperf_hpc import __version__
from aiperf_hpc.core.live_stats import LiveAggregator
from aiperf_hpc.core.metrics import compute_metrics
from aiperf_hpc.core.server_metrics import profiling_window_ns, summarize_server_metrics
from aiperf_hpc.core.validity import assess_validity
from aiperf_hpc.exporters.csv_export import write_profile_export_csv
from aiperf_hpc.exporters.json_export import write_profile_export_json
from aiperf_hpc.exporters.records_jsonl import read_records_jsonl
from aiperf_hpc.exporters.server_metrics_jsonl import SERVER_METRICS_FILE, read_server_metrics_jsonl
from aiperf_hpc.exporters.time_slices import write_time_slices
from aiperf_hpc.protocol.messages import (
    Configure,
    ExpectRecords,
    Finalize,
    Message,
    RecordBatch,
    RecordsProgress,
    ResultsReady,
)
from aiperf_hpc.runtime.bus import bound_endpoint
from aiperf_hpc.runtime.service import Service
from aiperf_hpc.services.server_metrics_scraper import ServerMetricsScraper

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0
RECORDS_FILE = "records.jsonl"


class RecordsManager(Service):
    service_type = "records"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        self._configure_message = message
        self._run_dir = Path(message.run_dir)
        self._file: IO[bytes] = (self._run_dir / RECORDS_FILE).open("ab")
        self._seen: set[int] = set()
        self._errors = 0
        self._expected: int | None = None
        self._live = LiveAggregator()
        self._started_wall_ns = time.time_ns()
        self._pull = self.bus.socket(zmq.PULL, bind=message.addresses.records)
        self._scraper = ServerMetricsScraper(message.config.server_metrics.urls, self._run_dir / SERVER_METRICS_FILE)
        await self._scraper.start()  # the baseline scrape, before any request is sent
        return {"records_file": str(self._run_dir / RECORDS_FILE), "endpoint": bound_endpoint(self._pull)}

    async def on_control(self, message: Message) -> None:
        match message:
            case ExpectRecords(total=total):
                self._expected = total
                await self._report_progress()
            case Finalize():
                await self._scraper.stop()
                results = await asyncio.get_running_loop().run_in_executor(None, self._finalize, message)
                await self.send_control(results)
            case _:
                await super().on_control(message)

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        return [self._pull_loop(), self._progress_loop(), self._scraper.scrape_loop()]

    async def close(self) -> None:
        if hasattr(self, "_file"):
            self._file.close()
        if hasattr(self, "_scraper"):
            await self._scraper.close()

    async def _pull_loop(self) -> None:
        while True:
            _, message = await self.bus.next_message(self._pull)
            if not isinstance(message, RecordBatch):
                log.error("unexpected %s on the records socket", type(message).__name__)
                continue
            self._append(message)
            if self._expected is not None and len(self._seen) >= self._expected:
                await self._report_progress()

    def _append(self, batch: RecordBatch) -> None:
        lines = []
        accepted = []
        for record in batch.records:
            if record.credit_id in self._seen:
                log.warning("dropped a second record for credit %d", record.credit_id)
                continue
            self._seen.add(record.credit_id)
            accepted.append(record)
            if record.error_type not in (None, "cancelled"):
                self._errors += 1
            lines.append(orjson.dumps(record.model_dump(mode="json"), option=orjson.OPT_APPEND_NEWLINE))
        self._file.write(b"".join(lines))
        self._file.flush()
        self._live.add(accepted, time.perf_counter_ns())

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            await self._report_progress()

    async def _report_progress(self) -> None:
        live = self._live.snapshot(time.perf_counter_ns())
        await self.send_control(
            RecordsProgress(received=len(self._seen), errors=self._errors, expected=self._expected, live=live)
        )

    def _finalize(self, message: Finalize) -> ResultsReady:
        """Compute metrics from records.jsonl and write the exports; runs in a thread."""
        self._file.flush()
        loaded = read_records_jsonl(self._run_dir / RECORDS_FILE)
        metrics = compute_metrics(loaded.records, goodput=self._configure_message.config.metrics.goodput or None)
        config = self._configure_message.config
        validity = assess_validity(metrics, max_loop_lag_ms=message.max_loop_lag_ms, workers=config.worker_count)
        metadata_ = {
            "validity": validity.as_dict(),
            "status": message.status,
            "missing_records": message.missing_records,
            "torn_record_lines": loaded.skipped_lines,
            "config": config.redacted(),
            "random_seed": config.inputs.random_seed,
            "dataset": message.dataset,
            "workers": config.worker_count,
            "started_wall_ns": self._started_wall_ns,
            "finished_wall_ns": time.time_ns(),
            "hostname": socket.gethostname(),
            "slurm": _slurm_metadata(),
            "versions": _versions(),
        }
        server_metrics = summarize_server_metrics(
            read_server_metrics_jsonl(self._scraper.path), profiling_window_ns(loaded.records)
        )
        export_path = self._run_dir / "profile_export.json"
        write_profile_export_json(export_path, metrics, metadata_, server_metrics=server_metrics)
        write_profile_export_csv(self._run_dir / "profile_export.csv", metrics)
        write_time_slices(self._run_dir, loaded.records, config.metrics.slice_duration_s)
        return ResultsReady(
            export_path=str(export_path),
            metrics=metrics.model_dump(mode="json"),
            warnings=validity.warnings,
            server_metrics=server_metrics,
        )


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
