"""The fork server (launch/fork_server.py) under the real CLI: nothing outlives a killed controller
or a killed fork server."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.harness import CLI, mock_server, new_tag, processes_tagged, service_pids, tagged_env, wait_for

pytestmark = pytest.mark.integration

LONG_RUN = ["profile", "-m", "mock-model", "--streaming", "--concurrency", "4", "--request-count", "100000"]


def _start_long_run(url: str, artifact_dir: Path, tag: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*CLI, *LONG_RUN, "-u", url, "--osl", "2", "--artifact-dir", str(artifact_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=tagged_env(tag),
    )
    records = artifact_dir / "records.jsonl"
    wait_for(lambda: records.exists() and records.stat().st_size > 0, 60, "the first records")
    return process


def test_services_are_forked_from_the_fork_server(tmp_path: Path) -> None:
    tag = new_tag()
    with mock_server("--ttft-ms", "20") as server:
        process = _start_long_run(server.url, tmp_path / "art", tag)
        try:
            [fork_server] = service_pids(tag, "fork-server")
            [worker] = service_pids(tag, "worker-0")
            assert _parent_pid(worker) == fork_server
            assert _parent_pid(fork_server) == process.pid
            assert os.getsid(worker) == worker  # its own session: a Ctrl-C reaches only the controller
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
    assert process.returncode == 130
    wait_for(lambda: not processes_tagged(tag), 10, "every child process to end")


def test_a_killed_controller_leaves_no_service_behind(tmp_path: Path) -> None:
    tag = new_tag()
    with mock_server("--ttft-ms", "20") as server:
        process = _start_long_run(server.url, tmp_path / "art", tag)
        try:
            assert service_pids(tag, "worker-0")
            process.kill()
            process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        wait_for(lambda: not processes_tagged(tag), 10, "every service to die with the controller")


def test_a_killed_fork_server_fails_the_run_and_leaves_no_service_behind(tmp_path: Path) -> None:
    tag = new_tag()
    with mock_server("--ttft-ms", "20") as server:
        process = _start_long_run(server.url, tmp_path / "art", tag)
        try:
            [fork_server] = service_pids(tag, "fork-server")
            os.kill(fork_server, signal.SIGKILL)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    assert process.returncode == 1, stderr
    assert "fork-server exited with code -9" in stderr
    assert "Traceback" not in stderr
    wait_for(lambda: not processes_tagged(tag), 10, "every child process to end")


def _parent_pid(pid: int) -> int:
    stat = (Path("/proc") / str(pid) / "stat").read_text()
    return int(stat[stat.rfind(")") + 2 :].split()[1])
