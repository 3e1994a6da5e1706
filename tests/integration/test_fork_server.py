"""The fork server (launch/fork_server.py): on its own in a child Python (exit codes, signals, who
dies with whom), and under the real CLI (nothing outlives a killed controller or fork server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from aiperf_hpc.launch.fork_server import ForkServer
from tests.integration.harness import CLI, mock_server, new_tag, processes_tagged, service_pids, tagged_env, wait_for

pytestmark = pytest.mark.integration

# Runs in a child Python, so that the fork server is a fork of it and not of pytest; prints a JSON
# summary. Children: "exit N" returns N, "sleep" waits to be signalled, "pidfile PATH" writes its pid
# and waits, "parent PATH" asks the fork server for a "pidfile PATH" child of its own and waits.
_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from pathlib import Path
    from aiperf_hpc.launch.fork_server import ForkServer

    def child_main(argv):
        if argv[0] == "exit":
            return int(argv[1])
        if argv[0] == "pidfile":
            Path(argv[1]).write_text(str(os.getpid()))
        elif argv[0] == "parent":  # the connection stays referenced: closing it would end the grandchild
            connection = ForkServer.inherited()
            connection.start_child("grandchild", ["pidfile", argv[1]], logs / "grandchild.log")
        while True:
            signal.pause()

    def wait_for(condition, what, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                sys.exit(f"timed out waiting for {what}")
            time.sleep(0.01)  # ok: polling interval of a bounded wait

    def alive(pid):
        try:
            return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False

    tmp = Path(sys.argv[1])
    logs = tmp / "logs"
    server = ForkServer.start(logs / "fork-server.log", child_main, ["json"])
    exits = server.start_child("exits", ["exit", "3"], logs / "exits.log")
    sleeper = server.start_child("sleeper", ["sleep"], logs / "sleeper.log")
    parent = server.start_child("parent", ["parent", str(tmp / "grandchild.pid")], logs / "parent.log")
    wait_for(lambda: exits.poll() is not None, "the exit code")
    wait_for(lambda: (tmp / "grandchild.pid").exists(), "the grandchild")
    grandchild = int((tmp / "grandchild.pid").read_text())
    sleeper.kill()
    wait_for(lambda: sleeper.poll() is not None, "the killed child")
    parent.kill()
    wait_for(lambda: parent.poll() is not None, "the killed parent")
    wait_for(lambda: not alive(grandchild), "the grandchild to die with its parent")
    last = server.start_child("last", ["pidfile", str(tmp / "last.pid")], logs / "last.log")
    wait_for(lambda: (tmp / "last.pid").exists(), "the last child")
    last_pid = int((tmp / "last.pid").read_text())
    server.close()
    print(json.dumps({
        "exits": exits.poll(), "sleeper": sleeper.poll(), "parent": parent.poll(),
        "last_alive_after_close": alive(last_pid), "server": server.server_exit_code(),
    }))
    """
)


def test_exit_codes_signals_and_who_dies_with_whom(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "exits": 3,
        "sleeper": -signal.SIGKILL,
        "parent": -signal.SIGKILL,
        "last_alive_after_close": False,  # closing the owner's connection ends every child
        "server": 0,
    }
    assert (tmp_path / "logs" / "fork-server.log").exists()


def test_no_fork_while_another_python_thread_runs(tmp_path: Path) -> None:
    """A fork copies only the forking thread: whatever another thread held would stay held. The
    launcher then starts subprocesses instead (the caller gets None)."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert ForkServer.start(tmp_path / "fork-server.log", lambda argv: 0, []) is None
    finally:
        stop.set()
        thread.join(5)
    assert not (tmp_path / "fork-server.log").exists()


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
