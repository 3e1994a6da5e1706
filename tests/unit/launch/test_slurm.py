"""SlurmLauncher: the workers' srun step, and what its end loses, with a fake process in place of srun."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import pytest

from aiperf_hpc.config import ClusterConfig
from aiperf_hpc.core.placement import Placement, decide_placement
from aiperf_hpc.errors import RunError
from aiperf_hpc.launch.local import LocalLauncher, ProcessHandle
from aiperf_hpc.launch.slurm import SRUN_STEP, SlurmLauncher
from aiperf_hpc.runtime.process import PARENT_PID_ENV
from tests.unit.launch.fakes import FakeSpawn

pytestmark = pytest.mark.timeout(10)

JOB = {"SLURM_JOB_ID": "42", "SLURM_JOB_NODELIST": "node[1-3]", "SLURM_NTASKS": "6", "SLURM_NTASKS_PER_NODE": "2"}
CONTROL = "tcp://10.0.0.1:5555"
WORKERS = [f"worker-{i}" for i in range(6)]


def placement() -> Placement:
    return decide_placement(ClusterConfig(launcher="slurm"), JOB)


def launcher(tmp_path: Path, spawn: FakeSpawn, *, overlap: bool = True) -> SlurmLauncher:
    return SlurmLauncher(LocalLauncher(tmp_path / "logs", spawn=spawn), placement(), python="/py", overlap=overlap)


def test_the_workers_are_one_srun_step_logged_under_its_name(tmp_path: Path) -> None:
    spawn = FakeSpawn()
    launcher(tmp_path, spawn).start_workers(WORKERS, CONTROL)
    [(argv, env, log_name)] = spawn.started
    assert argv == [
        "srun",
        "--nodes=3",
        "--ntasks=6",
        "--ntasks-per-node=2",
        "--nodelist=node1,node2,node3",
        "--kill-on-bad-exit=0",
        "--job-name=aiperf-hpc-workers",
        "--overlap",
        "/py",
        "-m",
        "aiperf_hpc.services",
        "worker",
        "slurm-task",
        CONTROL,
    ]
    assert SRUN_STEP == "workers-srun"
    assert log_name == str(tmp_path / "logs" / "workers-srun.log")
    assert PARENT_PID_ENV not in env


def test_without_overlap_the_step_does_not_ask_for_it(tmp_path: Path) -> None:
    command = launcher(tmp_path, FakeSpawn(), overlap=False).srun_command(CONTROL)
    assert "--overlap" not in command
    assert command[-3:] == ["worker", "slurm-task", CONTROL]


def test_the_end_of_the_step_loses_every_worker_once(tmp_path: Path) -> None:
    spawn = FakeSpawn()
    slurm = launcher(tmp_path, spawn)
    slurm.start_workers(WORKERS, CONTROL)
    assert slurm.newly_exited() == []
    (tmp_path / "logs" / "workers-srun.log").write_text("srun: error: node2: task 3: Killed\nsrun: Terminated\n")
    spawn.processes[0].code = 137
    assert slurm.newly_exited() == [(SRUN_STEP, 137)]
    assert slurm.lost_workers(SRUN_STEP) == WORKERS
    assert slurm.log_tail(SRUN_STEP, 1) == "srun: Terminated"
    assert slurm.newly_exited() == []


def test_any_other_process_is_lost_alone(tmp_path: Path) -> None:
    slurm = launcher(tmp_path, FakeSpawn())
    slurm.start_workers(WORKERS, CONTROL)
    assert slurm.lost_workers("worker-2") == ["worker-2"]


def test_a_silent_task_cannot_be_ended_alone(tmp_path: Path) -> None:
    spawn = FakeSpawn()
    slurm = launcher(tmp_path, spawn)
    slurm.start_workers(WORKERS, CONTROL)
    slurm.kill_worker("worker-1")
    assert spawn.processes[0].signals == []


async def test_stop_all_terminates_a_step_that_does_not_end(tmp_path: Path) -> None:
    spawn = FakeSpawn()
    slurm = launcher(tmp_path, spawn)
    slurm.start_workers(WORKERS, CONTROL)
    assert await slurm.stop_all(0.0) == [f"{SRUN_STEP} terminated"]
    assert spawn.processes[0].signals == ["terminate"]


def test_services_started_through_it_are_local_processes(tmp_path: Path) -> None:
    spawn = FakeSpawn()
    launcher(tmp_path, spawn).start("timing", "timing", CONTROL)
    [(argv, env, log_name)] = spawn.started
    assert argv == [sys.executable, "-m", "aiperf_hpc.services", "timing", "timing", CONTROL]
    assert PARENT_PID_ENV in env
    assert log_name == str(tmp_path / "logs" / "timing.log")


def test_no_srun_on_the_path_is_a_run_error(tmp_path: Path) -> None:
    def missing(argv: list[str], env: dict[str, str], log_file: IO[bytes]) -> ProcessHandle:
        raise FileNotFoundError(argv[0])

    slurm = SlurmLauncher(LocalLauncher(tmp_path / "logs", spawn=missing), placement(), python="/py", overlap=False)
    with pytest.raises(RunError, match="cannot start 'srun': not found on PATH"):
        slurm.start_workers(WORKERS, CONTROL)
