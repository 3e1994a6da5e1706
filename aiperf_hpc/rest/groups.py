"""Client groups: create, watch, stop, and show them. The HTTP routes (`app.py`) only call this.

Lifecycle of a client group (the `status` field):

```
  local:  running ──> completed | failed | cancelled          (the profile's exit code decides)
  slurm:  queued ──> running ──> completed | failed | cancelled   (the job's Slurm state decides)
  either: a start or submission that fails ──> failed, with `error`
```

`watch_loop` moves the statuses on; `recover` (at start) adopts local runs that still run and marks
failed those whose process ended while no service watched. `stop` (the service stopping) SIGTERMs
the local runs, which write partial results, and marks them cancelled; Slurm jobs run on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
import uuid
from pathlib import Path
from typing import Any, cast

import aiohttp

from aiperf_hpc.artifacts import PROFILE_EXPORT_FILE, SERVICE_RUN_LOG
from aiperf_hpc.errors import AiperfError, RunError
from aiperf_hpc.reporting.run_dir import run_figure, section
from aiperf_hpc.reporting.runs import run_row
from aiperf_hpc.rest import slurm_runs
from aiperf_hpc.rest.local_runs import LocalRuns, free_port, profile_command
from aiperf_hpc.rest.models import (
    ACTIVE_STATUSES,
    ClientGroup,
    ClientGroupCreate,
    Progress,
    SlurmResources,
    Status,
)
from aiperf_hpc.rest.progress import RecordLineCounter, requests_done_from_metrics
from aiperf_hpc.rest.store import GroupRow, Store
from aiperf_hpc.rest.validation import Plan, plan_client_group
from aiperf_hpc.results.json_export import read_json_object

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25
SLURM_POLL_INTERVAL_S = 2.0
STOP_GRACE_S = 60.0
"""How long a local run may take to write its partial results when the service stops."""
METRICS_TIMEOUT_S = 5.0


class NotFound(Exception):
    """No client group has this id."""


class Conflict(Exception):
    """The client group is not in a state that allows this; the message says which it is in."""


class ClientGroups:
    """Owns the store, the local processes and the Slurm job ids of one state dir.

    Every method runs on the event loop's thread (the local processes must be started there)."""

    def __init__(self, state_dir: Path, store: Store, http: aiohttp.ClientSession) -> None:
        self._state_dir = state_dir
        self._store = store
        self._http = http
        self._local = LocalRuns()
        self._records = RecordLineCounter()
        self._slurm_polled_s: dict[str, float] = {}
        self._creating: set[str] = set()  # recorded, not yet started or submitted: not for the watch loop

    # -- create, cancel --------------------------------------------------------------------------

    async def create(self, body: ClientGroupCreate) -> GroupRow:
        """Validate, record and start a client group. Raises validation.BodyError for a bad body; a
        run that cannot start is recorded as failed (with `error`), not raised."""
        group_id = uuid.uuid4().hex[:12]
        run_dir = (self._state_dir / "runs" / group_id).resolve()
        plan = plan_client_group(body, run_dir=run_dir, job_name=f"aiperf-hpc-{group_id}")
        row = GroupRow(
            id=group_id,
            name=body.name,
            launcher=body.launcher,
            status="queued",
            options=plan.shown_options,
            slurm=None if body.slurm is None else body.slurm.model_dump(),
            artifact_dir=str(run_dir),
            created_wall_ns=time.time_ns(),
            requests_expected=plan.requests_expected,
        )
        self._store.insert(row)
        self._creating.add(group_id)
        try:
            return await self._start(row, plan)
        finally:
            self._creating.discard(group_id)

    async def _start(self, row: GroupRow, plan: Plan) -> GroupRow:
        group_id, run_dir = row.id, Path(row.artifact_dir)
        if plan.submit is None:
            port = free_port()
            command = profile_command(plan.argv, run_dir, metrics_port=port)
            try:
                process = self._local.start(group_id, command, run_dir)
            except RunError as exc:
                return self._finish(row, "failed", None, str(exc))
            log.info("client group %s: profile pid %d", group_id, process.pid)
            return self._store.update(
                group_id, status="running", pid=process.pid, pid_start_ticks=process.start_ticks, metrics_port=port
            )
        try:
            job_id = await asyncio.to_thread(slurm_runs.submit_job, plan.submit, plan.argv)
        except AiperfError as exc:
            return self._finish(row, "failed", None, str(exc))
        log.info("client group %s: Slurm job %s", group_id, job_id)
        row = self._store.update(group_id, slurm_job_id=job_id)
        if row.cancel_requested:  # a DELETE came while sbatch ran
            try:
                await asyncio.to_thread(slurm_runs.cancel_job, job_id)
            except RunError as exc:
                log.error("client group %s: %s", group_id, exc)
        return row

    async def cancel(self, group_id: str) -> GroupRow:
        """Ask the run to stop: SIGTERM (local) or scancel (slurm). It turns `cancelled` once it has
        ended (after writing partial results). Raises NotFound, Conflict (already ended) or RunError."""
        row = self.get(group_id)
        if row.status not in ACTIVE_STATUSES:
            raise Conflict(f"client group {group_id} has already ended ({row.status})")
        row = self._store.update(group_id, cancel_requested=True)
        if row.launcher == "local":
            if not self._local.terminate(group_id):
                await self._refresh_local(row)
        elif row.slurm_job_id is not None:
            await asyncio.to_thread(slurm_runs.cancel_job, row.slurm_job_id)
            self._slurm_polled_s.pop(group_id, None)
        return self.get(group_id)

    # -- read ------------------------------------------------------------------------------------

    def get(self, group_id: str) -> GroupRow:
        row = self._store.get(group_id)
        if row is None:
            raise NotFound(f"no client group {group_id!r}")
        return row

    def all(self) -> list[GroupRow]:
        return self._store.all()

    def active_count(self) -> int:
        return sum(1 for row in self._store.all() if row.status in ACTIVE_STATUSES)

    async def live_metrics_text(self, group_id: str) -> str:
        """The run's Prometheus text, fetched now. Raises NotFound, Conflict (not a running local run
        with live metrics) or RunError (the run did not answer)."""
        row = self.get(group_id)
        if row.status != "running" or row.launcher != "local":
            raise Conflict(
                f"client group {group_id} is {row.status} ({row.launcher}): live metrics are served "
                "only while a local run runs"
            )
        if row.metrics_port is None:
            raise Conflict(f"client group {group_id} has no live metrics (it was started without --metrics-port)")
        url = f"http://127.0.0.1:{row.metrics_port}/metrics"
        try:
            async with self._http.get(url, timeout=_metrics_timeout()) as response:
                if response.status != 200:
                    raise RunError(f"the run's {url} answered HTTP {response.status}")
                return await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RunError(f"the run's {url} did not answer: {exc or type(exc).__name__}") from None

    async def view(self, row: GroupRow, *, live: bool) -> ClientGroup:
        """The API's view of a row. With `live`, a running local run's progress comes from its live
        metrics when they answer (one bounded HTTP request)."""
        return ClientGroup(
            id=row.id,
            name=row.name,
            launcher="slurm" if row.launcher == "slurm" else "local",
            status=_status(row.status),
            options=row.options,
            slurm=None if row.slurm is None else SlurmResources.model_validate(row.slurm),
            slurm_job_id=row.slurm_job_id,
            created_at=_iso(row.created_wall_ns),
            finished_at=None if row.finished_wall_ns is None else _iso(row.finished_wall_ns),
            exit_code=row.exit_code,
            error=row.error,
            artifact_dir=row.artifact_dir,
            progress=await self._progress(row, live=live),
            summary=row.summary,
        )

    async def _progress(self, row: GroupRow, *, live: bool) -> Progress | None:
        if live and row.status == "running" and row.metrics_port is not None:
            try:
                done = requests_done_from_metrics(await self.live_metrics_text(row.id))
            except (AiperfError, Conflict):
                done = None
            if done is not None:
                return Progress(requests_done=done, requests_expected=row.requests_expected, source="metrics")
        lines = self._records.count(Path(row.artifact_dir))
        if lines is None:
            return None
        return Progress(requests_done=lines, requests_expected=row.requests_expected, source="records")

    # -- watch -----------------------------------------------------------------------------------

    def recover(self) -> None:
        """At start: adopt local runs recorded as active whose process still runs (same pid and start
        time); mark the others failed. Slurm jobs are asked about by the watch loop."""
        for row in self._store.all():
            if row.status not in ACTIVE_STATUSES or row.launcher != "local":
                continue
            if row.pid is not None and self._local.adopt(row.id, row.pid, row.pid_start_ticks):
                log.info("client group %s: adopted its running profile (pid %d)", row.id, row.pid)
                continue
            self._finish(row, *_ended_unwatched(row, "while the service was down"))

    async def watch_loop(self) -> None:
        """Move every active client group's status on, every WATCH_INTERVAL_S, until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def refresh(self) -> None:
        """One look at every active client group."""
        for row in self._store.all():
            if row.status not in ACTIVE_STATUSES or row.id in self._creating:
                continue
            if row.launcher == "local":
                await self._refresh_local(row)
            else:
                await self._refresh_slurm(row)

    async def _refresh_local(self, row: GroupRow) -> None:
        ended, exit_code = self._local.ended(row.id)
        if not ended:
            return
        if exit_code is None:
            self._finish(row, *_ended_unwatched(row, "after a service restart"))
            return
        if exit_code == 0:  # it completed before any SIGTERM reached it
            self._finish(row, "completed", exit_code, None)
        elif row.cancel_requested:
            self._finish(row, "cancelled", exit_code, row.error or "stopped by DELETE")
        else:
            self._finish(row, "failed", exit_code, f"aiperf-hpc profile exited with {exit_code}; see {_run_log(row)}")

    async def _refresh_slurm(self, row: GroupRow) -> None:
        if row.slurm_job_id is None:
            self._finish(row, "failed", None, "the job was never submitted")
            return
        now_s = time.monotonic()
        if now_s - self._slurm_polled_s.get(row.id, float("-inf")) < SLURM_POLL_INTERVAL_S:
            return
        self._slurm_polled_s[row.id] = now_s
        job = await asyncio.to_thread(slurm_runs.job_state, row.slurm_job_id)
        if job is None:
            self._finish(row, *_ended_unwatched(row, f"job {row.slurm_job_id} unknown to scontrol and sacct"))
            return
        status = slurm_runs.status_of(job, cancel_requested=row.cancel_requested)
        if status in ACTIVE_STATUSES:
            if status != row.status:
                self._store.update(row.id, status=status)
            return
        error = None if status == "completed" else f"Slurm job {row.slurm_job_id} ended {job.state}"
        if status == "cancelled" and row.cancel_requested:
            error = f"stopped by DELETE ({error})"
        self._finish(row, status, job.exit_code, error)

    def _finish(self, row: GroupRow, status: Status, exit_code: int | None, error: str | None) -> GroupRow:
        self._slurm_polled_s.pop(row.id, None)
        self._records.forget(Path(row.artifact_dir))
        log.info("client group %s: %s (exit code %s)", row.id, status, exit_code)
        return self._store.update(
            row.id,
            status=status,
            exit_code=exit_code,
            error=error,
            summary=read_summary(Path(row.artifact_dir)),
            finished_wall_ns=time.time_ns(),
        )

    async def stop(self) -> list[str]:
        """The service is stopping: SIGTERM every local run, wait for their partial results (at most
        STOP_GRACE_S, then SIGKILL), record them cancelled. Returns what had to be killed."""
        for row in self._store.all():
            if row.launcher == "local" and row.status in ACTIVE_STATUSES:
                self._store.update(row.id, cancel_requested=True, error=row.error or "the service stopped")
        forced = await self._local.stop_all(STOP_GRACE_S)
        for row in self._store.all():
            if row.launcher == "local" and row.status in ACTIVE_STATUSES:
                await self._refresh_local(row)
        return forced


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """Key figures of `run_dir/profile_export.json` (as `aiperf-hpc runs list --json` shows them), or None."""
    path = run_dir / PROFILE_EXPORT_FILE
    if not path.is_file():
        return None
    try:
        document = read_json_object(path)
    except AiperfError:
        return None
    summary = dataclasses.asdict(run_row(run_dir.name, document))
    del summary["id"]
    count = run_figure(document, "request_count")
    return {"request_count": count, **summary}


def _ended_unwatched(row: GroupRow, when: str) -> tuple[Status, None, str | None]:
    """A run that ended with no exit code seen: completed only when its own export says so."""
    status = section(_export(row), "metadata").get("status")
    if row.cancel_requested:
        return "cancelled", None, row.error or "stopped by DELETE"
    if status == "completed":
        return "completed", None, None
    return "failed", None, f"the run ended {when}; exit code unknown (see {_run_log(row)})"


def _export(row: GroupRow) -> dict[str, Any]:
    try:
        return read_json_object(Path(row.artifact_dir) / PROFILE_EXPORT_FILE)
    except AiperfError:
        return {}


def _run_log(row: GroupRow) -> str:
    if row.launcher == "slurm":
        return f"{row.artifact_dir}/slurm-{row.slurm_job_id}.err"
    return f"{row.artifact_dir}/{SERVICE_RUN_LOG}"


def _status(text: str) -> Status:
    return cast(Status, text)  # only this module writes the column, with Status values


def _iso(wall_ns: int) -> str:
    return datetime.datetime.fromtimestamp(wall_ns / 1e9, tz=datetime.timezone.utc).isoformat()


def _metrics_timeout() -> aiohttp.ClientTimeout:
    # Every field set: setting one silently drops the 300 s total default (aio-libs/aiohttp#7274).
    return aiohttp.ClientTimeout(
        total=METRICS_TIMEOUT_S, connect=METRICS_TIMEOUT_S, sock_read=METRICS_TIMEOUT_S, sock_connect=METRICS_TIMEOUT_S
    )
