"""LocalLauncher as the workers' launcher: one process per worker, each lost and killed alone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aiperf_hpc.launch.local import LocalLauncher
from tests.unit.launch.fakes import FakeSpawn

pytestmark = pytest.mark.timeout(10)

CONTROL = "ipc:///tmp/control"


def test_each_worker_is_a_process_of_its_own(tmp_path: Path) -> None:
    spawn = FakeSpawn()
    LocalLauncher(tmp_path, spawn=spawn).start_workers(["worker-0", "worker-1"], CONTROL)
    assert [argv for argv, _, _ in spawn.started] == [
        [sys.executable, "-m", "aiperf_hpc.services", "worker", "worker-0", CONTROL],
        [sys.executable, "-m", "aiperf_hpc.services", "worker", "worker-1", CONTROL],
    ]
    assert [log_name for _, _, log_name in spawn.started] == [
        str(tmp_path / "worker-0.log"),
        str(tmp_path / "worker-1.log"),
    ]


def test_a_worker_exit_loses_that_worker_alone(tmp_path: Path) -> None:
    spawn = FakeSpawn()
    local = LocalLauncher(tmp_path, spawn=spawn)
    local.start_workers(["worker-0", "worker-1"], CONTROL)
    spawn.processes[1].code = -9
    assert local.newly_exited() == [("worker-1", -9)]
    assert local.lost_workers("worker-1") == ["worker-1"]


def test_a_silent_worker_is_killed_and_an_unknown_id_ignored(tmp_path: Path) -> None:
    spawn = FakeSpawn()
    local = LocalLauncher(tmp_path, spawn=spawn)
    local.start_workers(["worker-0", "worker-1"], CONTROL)
    local.kill_worker("worker-0")
    local.kill_worker("worker-7")
    assert [p.signals for p in spawn.processes] == [["kill"], []]
    local.kill_worker("worker-0")  # already ended: not signalled again
    assert spawn.processes[0].signals == ["kill"]
