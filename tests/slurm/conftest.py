"""A real Slurm for the tests in this folder: the project's single-machine cluster (scripts/local-slurm.sh).

The `slurm_cluster` fixture checks `scripts/local-slurm.sh status` once per session. When the cluster is
not up the tests skip and say how to start it; with AIPERF_HPC_REQUIRE_SLURM=1 (set by CI) they fail
instead, so CI cannot pass by skipping.

Every Slurm command a test runs through `SlurmCluster` is bounded: on timeout the command's process
group is killed, its job is cancelled by its unique job name, and the test fails with the output so far.
Jobs inherit the test's environment (sbatch/srun --export=ALL) minus the caller's SLURM_* variables, so
a test behaves the same whether pytest itself runs inside an allocation or not.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.harness import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_SLURM = REPO_ROOT / "scripts" / "local-slurm.sh"
REQUIRE_ENV = "AIPERF_HPC_REQUIRE_SLURM"
PARTITION = "debug"
JOB_NAME_PREFIX = "aiperf-test-"

STATUS_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 60.0
QUERY_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0

# Job states after which a job runs no more (squeue/scontrol spelling).
FINISHED_STATES = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT"}
)


class SlurmCommandTimeout(AssertionError):
    """A Slurm command outlived its timeout; its process group was killed and its job cancelled."""


@dataclass(frozen=True)
class JobState:
    """A job as `scontrol show job` reports it: state name and the exit code of its batch script."""

    job_id: int
    state: str
    exit_code: int

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class BatchJob:
    """A submitted batch job; `output_path` is its stdout and stderr (sbatch --output)."""

    job_id: int
    name: str
    output_path: Path

    def output(self) -> str:
        """The job's output so far ('' before the job has written any)."""
        try:
            return self.output_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass(frozen=True)
class FinishedJob:
    """A batch job that has finished, with its final state and batch-script exit code."""

    job: BatchJob
    state: JobState

    @property
    def output(self) -> str:
        return self.job.output()


def slurm_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without the caller's SLURM_* variables (SLURM_CONF stays), plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_") or key == "SLURM_CONF"}
    env.update(extra or {})
    return env


def process_running(pid: int) -> bool:
    """Whether `pid` is a live process on this machine (a zombie counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return not stat.rsplit(")", 1)[1].strip().startswith("Z")


@dataclass
class SlurmCluster:
    """The running cluster and bounded ways to use it. Do not pass --job-name: the helpers name every job."""

    nodes: tuple[str, ...]
    cpus_per_node: int
    partition: str = PARTITION
    _job_names: list[str] = field(default_factory=list, repr=False)

    def new_job_name(self) -> str:
        """A unique job name; jobs still listed under it at session end are cancelled."""
        name = f"{JOB_NAME_PREFIX}{uuid.uuid4().hex[:12]}"
        self._job_names.append(name)
        return name

    def run(
        self,
        args: Sequence[str],
        *,
        timeout_s: float = COMMAND_TIMEOUT_S,
        job_name: str | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run one Slurm command to completion and return it whatever its exit code.

        On timeout: SIGTERM to the command's process group (srun and salloc then end their job),
        SIGKILL after STOP_GRACE_S, `scancel --name=job_name`, and SlurmCommandTimeout with the output.
        """
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=slurm_env(env),
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stdout, stderr = self._stop(process)
            if job_name is not None:
                self.scancel_name(job_name)
            raise SlurmCommandTimeout(
                f"{' '.join(args)} did not finish within {timeout_s} s\nstdout:\n{stdout}\nstderr:\n{stderr}"
            ) from None
        return subprocess.CompletedProcess(list(args), process.returncode, stdout, stderr)

    def srun(
        self,
        *args: str,
        timeout_s: float = COMMAND_TIMEOUT_S,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`srun ARGS...` (a new allocation of its own) in partition `debug`."""
        name = self.new_job_name()
        return self.run(
            ["srun", f"--job-name={name}", f"--partition={self.partition}", *args],
            timeout_s=timeout_s,
            job_name=name,
            cwd=cwd,
            env=env,
        )

    def salloc(
        self,
        *args: str,
        timeout_s: float = COMMAND_TIMEOUT_S,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`salloc ARGS...`; the command in ARGS runs on this (the submit) host, its `srun` steps on the nodes."""
        name = self.new_job_name()
        return self.run(
            ["salloc", f"--job-name={name}", f"--partition={self.partition}", *args],
            timeout_s=timeout_s,
            job_name=name,
            cwd=cwd,
            env=env,
        )

    def sbatch(self, script: str, *args: str, directory: Path, env: Mapping[str, str] | None = None) -> BatchJob:
        """Submit `script` (its text, starting with #!) and return at once; the job writes to directory/NAME.out.

        The job runs in `directory` with this process's environment plus `env` (sbatch exports it all).
        """
        name = self.new_job_name()
        command = self._sbatch_command(script, name, directory, args)
        done = self.run(command, timeout_s=QUERY_TIMEOUT_S, job_name=name, env=env)
        if done.returncode != 0:
            raise AssertionError(f"sbatch failed with exit code {done.returncode}: {done.stderr}")
        return BatchJob(self._job_id(done.stdout), name, directory / f"{name}.out")

    def sbatch_wait(
        self,
        script: str,
        *args: str,
        directory: Path,
        timeout_s: float = COMMAND_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
    ) -> FinishedJob:
        """Submit `script` and return once the job has finished, like `sbatch --wait` but sooner.

        `sbatch --wait` first looks after 2 s, then after 8 s more, then 32 s: a job of 3 s costs 10 s.
        This polls `scontrol show job` instead. On timeout the job is cancelled and AssertionError raised.
        """
        job = self.sbatch(script, *args, directory=directory, env=env)
        try:
            state = self.wait_finished(job.job_id, timeout_s)
        except AssertionError:
            self.scancel_name(job.name)
            raise AssertionError(
                f"job {job.job_id} did not finish within {timeout_s} s; output:\n{job.output()}"
            ) from None
        return FinishedJob(job, state)

    def job_state(self, job_id: int) -> JobState | None:
        """The job's state, or None once slurmctld has forgotten it (MinJobAge after it ended)."""
        done = self.run(["scontrol", "show", "job", "--oneliner", str(job_id)], timeout_s=QUERY_TIMEOUT_S)
        if done.returncode != 0:
            if "Invalid job id" in done.stderr:
                return None
            raise AssertionError(f"scontrol show job {job_id} failed: {done.stderr}")
        state = re.search(r"\bJobState=(\S+)", done.stdout)
        exit_code = re.search(r"\bExitCode=(\d+):\d+", done.stdout)
        if state is None or exit_code is None:
            raise AssertionError(f"unexpected scontrol output: {done.stdout!r}")
        return JobState(job_id, state.group(1), int(exit_code.group(1)))

    def wait_finished(self, job_id: int, timeout_s: float = COMMAND_TIMEOUT_S) -> JobState:
        """Poll until the job has finished; AssertionError after `timeout_s`."""
        states: list[JobState | None] = [None]

        def finished() -> bool:
            states[0] = self.job_state(job_id)
            return states[0] is None or states[0].finished

        wait_for(finished, timeout_s, f"job {job_id} to finish")
        if states[0] is None:
            raise AssertionError(f"job {job_id} was forgotten before it was seen finished")
        return states[0]

    def wait_running(self, job_id: int, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        """Poll until the job runs; AssertionError if it finishes first or after `timeout_s`."""

        def running() -> bool:
            state = self.job_state(job_id)
            if state is None or state.finished:
                raise AssertionError(f"job {job_id} ended before it was seen running: {state}")
            return state.state == "RUNNING"

        wait_for(running, timeout_s, f"job {job_id} to run")

    def scancel(self, job_id: int) -> None:
        done = self.run(["scancel", str(job_id)], timeout_s=QUERY_TIMEOUT_S)
        if done.returncode != 0:
            raise AssertionError(f"scancel {job_id} failed: {done.stderr}")

    def scancel_name(self, job_name: str) -> None:
        """Cancel every job named `job_name`, if any (best effort: used on cleanup paths)."""
        with contextlib.suppress(subprocess.TimeoutExpired, SlurmCommandTimeout):
            self.run(["scancel", f"--name={job_name}"], timeout_s=QUERY_TIMEOUT_S)

    def cancel_leftovers(self) -> None:
        """Cancel the jobs this session started that are still listed (best effort: a cleanup path)."""
        names = set(self._job_names)
        self._job_names.clear()
        with contextlib.suppress(subprocess.TimeoutExpired, SlurmCommandTimeout):
            listed = self.run(["squeue", "--noheader", "--format=%A %j"], timeout_s=QUERY_TIMEOUT_S)
            job_ids = [
                job_id
                for job_id, name in (line.split(maxsplit=1) for line in listed.stdout.splitlines())
                if name in names
            ]
            if job_ids:
                self.run(["scancel", *job_ids], timeout_s=QUERY_TIMEOUT_S)

    def _sbatch_command(self, script: str, name: str, directory: Path, args: Sequence[str]) -> list[str]:
        script_path = directory / f"{name}.sh"
        script_path.write_text(script)
        return [
            "sbatch",
            "--parsable",
            f"--job-name={name}",
            f"--partition={self.partition}",
            f"--chdir={directory}",
            f"--output={directory / name}.out",
            *args,
            str(script_path),
        ]

    @staticmethod
    def _job_id(sbatch_stdout: str) -> int:
        # --parsable prints "JOBID" or "JOBID;CLUSTER".
        first = sbatch_stdout.strip().splitlines()[0]
        return int(first.split(";")[0])

    @staticmethod
    def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
        """SIGTERM the process group, SIGKILL it after STOP_GRACE_S; return the output read."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.communicate(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return process.communicate(timeout=STOP_GRACE_S)


def _cluster_down_reason() -> str | None:
    """Why the local cluster cannot be used, or None when `local-slurm.sh status` says it is up."""
    try:
        done = subprocess.run(
            [str(LOCAL_SLURM), "status"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=STATUS_TIMEOUT_S,
            env=slurm_env(),
        )
    except subprocess.TimeoutExpired:
        return f"{LOCAL_SLURM.name} status did not answer within {STATUS_TIMEOUT_S} s"
    if done.returncode != 0:
        # status ends with "local-slurm: down: WHY" on stderr.
        last_lines = done.stderr.strip().splitlines()[-1:] or [
            f"{LOCAL_SLURM.name} status exited with {done.returncode}"
        ]
        return last_lines[0].removeprefix("local-slurm: ")
    return None


def _read_cluster() -> SlurmCluster:
    done = subprocess.run(
        ["sinfo", "--noheader", "--Node", f"--partition={PARTITION}", "--format=%N %c"],
        capture_output=True,
        text=True,
        timeout=QUERY_TIMEOUT_S,
        env=slurm_env(),
        check=True,
    )
    rows = sorted({tuple(line.split()) for line in done.stdout.splitlines() if line.strip()})
    nodes = tuple(name for name, _ in rows)
    cpus = {int(count) for _, count in rows}
    if not nodes or len(cpus) != 1:
        raise AssertionError(f"unexpected sinfo output for partition {PARTITION}: {done.stdout!r}")
    return SlurmCluster(nodes=nodes, cpus_per_node=cpus.pop())


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    reason = _cluster_down_reason()
    if reason is not None:
        message = f"no Slurm: run scripts/local-slurm.sh start ({reason})"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {message}")
        pytest.skip(message)
    cluster = _read_cluster()
    try:
        yield cluster
    finally:
        cluster.cancel_leftovers()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line in every run's summary that says whether the Slurm tests really ran (CI greps it)."""
    counts = {
        outcome: sum(1 for report in terminalreporter.stats.get(outcome, []) if "tests/slurm/" in report.nodeid)
        for outcome in ("passed", "failed", "skipped")
    }
    if any(counts.values()):
        terminalreporter.write_line(
            f"Slurm tests against a real cluster: {counts['passed']} passed, "
            f"{counts['failed']} failed, {counts['skipped']} skipped"
        )
