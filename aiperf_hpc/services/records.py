"""RecordsManager: appends every record to `records.jsonl` as it arrives, then post-processes.

Each received batch is written and flushed before the next is read, so a crash of any process loses
nothing already received. Records are keyed by credit id: the first record of a credit wins (a
worker's real record, or the timing manager's `lost` record), a second is logged and dropped.
Accepted records also feed the run's live figures (`core.live_stats`), sent with the progress every
second for the live view and the live /metrics.

Post-processing is a stage of this service, not a process of its own: it runs once, after every
record is in. It reads the records as columns from the spool this service wrote alongside
`records.jsonl` (`results.columns_spool`), which saves decoding the file again; results can
always be recomputed from `records.jsonl` itself (`aiperf-hpc recompute`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, Any

import orjson
import zmq

from aiperf_hpc.artifacts import RECORDS_FILE, SERVER_METRICS_FILE, SPOOL_FILE
from aiperf_hpc.core.credit_set import CreditSet
from aiperf_hpc.core.live_stats import LiveAggregator
from aiperf_hpc.protocol.messages import (
    Configure,
    ExpectRecords,
    Finalize,
    Message,
    RecordBatch,
    RecordsProgress,
    ResultsReady,
)
from aiperf_hpc.results.columns_spool import ColumnsSpool
from aiperf_hpc.results.pipeline import RunEnd, run_config_metadata, write_results, write_run_config
from aiperf_hpc.runtime.bus import bound_endpoint
from aiperf_hpc.runtime.service import Service
from aiperf_hpc.services.server_metrics_scraper import ServerMetricsScraper

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0


class RecordsManager(Service):
    service_type = "records"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        self._run_dir = Path(message.run_dir)
        # What the records will not hold, on disk before any record: `aiperf-hpc recompute` needs it
        # should this process die before finalizing.
        self._run_config = run_config_metadata(message.config, started_wall_ns=self.clock.wall_ns())
        write_run_config(self._run_dir, self._run_config)
        records_path = self._run_dir / RECORDS_FILE
        # The spool holds what this service writes; a file that already had lines must be read whole.
        fresh = not records_path.exists() or records_path.stat().st_size == 0
        self._file: IO[bytes] = records_path.open("ab")
        self._spool = ColumnsSpool(self._run_dir / SPOOL_FILE) if fresh else None
        self._seen = CreditSet()  # one bit per credit id, however long the run
        self._errors = 0
        self._expected: int | None = None
        self._live = LiveAggregator()
        self._pull = self.bus.socket(zmq.PULL, bind=message.addresses.records)
        self._scraper = ServerMetricsScraper(
            message.config.server_metrics.urls, self._run_dir / SERVER_METRICS_FILE, clock=self.clock
        )
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
        spool: ColumnsSpool | None = getattr(self, "_spool", None)
        if spool is not None:
            spool.close()
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
        accepted = []
        dumped = []
        for record in batch.records:
            if not self._seen.add(record.credit_id):
                log.warning("dropped a second record for credit %d", record.credit_id)
                continue
            accepted.append(record)
            if record.error_type not in (None, "cancelled"):
                self._errors += 1
            dumped.append(record.model_dump(mode="json"))
        self._file.write(b"".join([orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) for record in dumped]))
        self._file.flush()
        if self._spool is not None:
            self._spool.add(dumped)
        self._live.add(accepted, self.clock.perf_ns())

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            await self._report_progress()

    async def _report_progress(self) -> None:
        live = self._live.snapshot(self.clock.perf_ns())
        await self.send_control(
            RecordsProgress(received=len(self._seen), errors=self._errors, expected=self._expected, live=live)
        )

    def _finalize(self, message: Finalize) -> ResultsReady:
        """Compute metrics from records.jsonl and write the exports; runs in a thread."""
        self._file.flush()
        end = RunEnd(
            status=message.status,
            missing_records=message.missing_records,
            dataset=message.dataset,
            max_loop_lag_ms=message.max_loop_lag_ms,
            finished_wall_ns=self.clock.wall_ns(),
        )
        columns = None if self._spool is None else self._spool.read()
        results = write_results(self._run_dir, self._run_config, end, columns)
        return ResultsReady(
            export_path=str(results.export_path),
            metrics=results.metrics.model_dump(mode="json"),
            warnings=results.validity.warnings,
            server_metrics=results.server_metrics,
        )
