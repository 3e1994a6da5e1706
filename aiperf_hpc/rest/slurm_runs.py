"""Slurm client groups: submitted as `aiperf-hpc submit` does (`launch.submit`), watched, cancelled.

A job's state comes from `scontrol show job` while slurmctld remembers the job (MinJobAge, 300 s by
default), then from `sacct` where accounting is on. Every command is bounded and runs in a worker
thread (`asyncio.to_thread`), never on the event loop. Commands run without the service's own
SLURM_* variables, as `submit` does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from aiperf_hpc.core.sbatch import SubmitOptions
from aiperf_hpc.errors import RunError
from aiperf_hpc.launch.submit import sbatch_environment, submit
from aiperf_hpc.rest.models import Status

QUERY_TIMEOUT_S = 15.0

_QUEUED_STATES = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
_RUNNING_STATES = frozenset(
    {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING", "SPECIAL_EXIT"}
)


@dataclass(frozen=True)
class JobState:
    """A job as Slurm reports it: its state name (`COMPLETED`) and its batch script's exit code."""

    state: str
    exit_code: int | None


def submit_job(options: SubmitOptions, profile_argv: list[str]) -> str:
    """Write the sbatch script into the artifact dir and submit it; the job id. Blocking (sbatch may
    take up to `launch.submit.SBATCH_TIMEOUT_S`). Raises UsageError or RunError with one line."""
    return submit(options, profile_argv, dry_run=False)


def job_state(job_id: str) -> JobState | None:
    """The job's state, or None when neither slurmctld nor accounting knows it. Blocking."""
    shown = _run(["scontrol", "show", "job", "--oneliner", job_id])
    if shown is not None and shown.returncode == 0:
        state_match = re.search(r"\bJobState=(\S+)", shown.stdout)
        code_match = re.search(r"\bExitCode=(\d+):\d+", shown.stdout)
        if state_match is not None:
            return JobState(state_match.group(1), int(code_match.group(1)) if code_match else None)
    accounted = _run(["sacct", "--noheader", "--allocations", "--parsable2", "--format=State,ExitCode", "-j", job_id])
    if accounted is not None and accounted.returncode == 0:
        for line in accounted.stdout.splitlines():
            state, _, code = line.partition("|")
            if state.strip():
                exit_code = code.split(":", 1)[0]
                return JobState(state.split()[0], int(exit_code) if exit_code.isdigit() else None)
    return None


def cancel_job(job_id: str) -> None:
    """`scancel JOB` (Slurm sends SIGTERM, and the profile writes partial results). Blocking; RunError."""
    done = _run(["scancel", job_id])
    if done is None:
        raise RunError(f"scancel {job_id} did not finish within {QUERY_TIMEOUT_S:g} s (or is not installed)")
    if done.returncode != 0:
        raise RunError(f"scancel {job_id} failed: {' '.join(done.stderr.split()) or done.returncode}")


def status_of(job: JobState, *, cancel_requested: bool) -> Status:
    """The client-group status of a job state; a finished job that was cancelled through the API is
    `cancelled` whatever Slurm calls its end (a job ended by SIGTERM may read FAILED)."""
    if job.state in _QUEUED_STATES:
        return "queued"
    if job.state in _RUNNING_STATES:
        return "running"
    if cancel_requested or job.state == "CANCELLED":
        return "cancelled"
    return "completed" if job.state == "COMPLETED" else "failed"


def _run(command: list[str]) -> subprocess.CompletedProcess[str] | None:
    """Run one Slurm command; None when it is missing or outlives QUERY_TIMEOUT_S."""
    if shutil.which(command[0]) is None:
        return None
    try:
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT_S,
            env=sbatch_environment(os.environ),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
