"""`aiperf-hpc run RECIPE` with the real mock server as the recipe's server: the server is started,
profiled and stopped on every way out (success, never healthy, SIGINT), and no process is left."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.harness import CLI, new_tag, processes_tagged, tagged_env, wait_for

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mock_recipe(tmp_path: Path, port: int, **benchmark: Any) -> Path:
    recipe = {
        "artifact_dir": str(tmp_path / "art"),
        "server": {
            "command": [sys.executable, "-m", "aiperf_hpc.cli", "mock-server", "--port", str(port), "--ttft-ms", "5"],
            "port": port,
            "health_timeout_s": 60,
        },
        "benchmark": {"model": "mock-model", "streaming": True, "isl": 16, "osl": 4, **benchmark},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def run_recipe(path: Path, tag: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [*CLI, "run", str(path)], capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=tagged_env(tag)
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"run did not finish within {RUN_TIMEOUT_S} s: {exc.stderr!r}") from exc


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_recipe_profiles_its_server_and_stops_it(tmp_path: Path) -> None:
    tag, port = new_tag(), free_port()
    done = run_recipe(mock_recipe(tmp_path, port, concurrency=2, **{"request-count": 20}), tag)
    assert done.returncode == 0, done.stderr
    exported = json.loads((tmp_path / "art" / "profile_export.json").read_text())
    assert exported["run"]["request_count"] == 20 and exported["run"]["success_count"] == 20
    assert exported["metadata"]["config"]["endpoint"]["url"] == f"http://127.0.0.1:{port}"
    assert "listening on" in (tmp_path / "art" / "server.log").read_text()
    wait_for(lambda: not processes_tagged(tag), 10, "the server and every service to end")
    assert port_closed(port)


def test_a_list_of_benchmarks_runs_each_into_its_own_directory(tmp_path: Path) -> None:
    tag, port = new_tag(), free_port()
    path = mock_recipe(tmp_path, port)
    recipe = yaml.safe_load(path.read_text())
    one = recipe.pop("benchmark")
    recipe["benchmark"] = [{**one, "name": "a", "request-count": 5}, {**one, "request-count": 7}]
    path.write_text(yaml.safe_dump(recipe))
    done = run_recipe(path, tag)
    assert done.returncode == 0, done.stderr
    counts = {
        name: json.loads((tmp_path / "art" / name / "profile_export.json").read_text())["run"]["request_count"]
        for name in ("a", "benchmark-2")
    }
    assert counts == {"a": 5, "benchmark-2": 7}
    wait_for(lambda: not processes_tagged(tag), 10, "the server and every service to end")


def test_a_server_that_never_answers_fails_with_its_log_tail_and_is_stopped(tmp_path: Path) -> None:
    tag, port = new_tag(), free_port()
    path = mock_recipe(tmp_path, port)
    recipe = yaml.safe_load(path.read_text())
    # Prints, then neither listens nor exits: only the health timeout ends the wait.
    recipe["server"]["command"] = [
        sys.executable,
        "-c",
        "import time; print('loading weights', flush=True); time.sleep(120)",  # ok: a server that never answers
    ]
    recipe["server"]["health_timeout_s"] = 1
    path.write_text(yaml.safe_dump(recipe))
    done = run_recipe(path, tag)
    assert done.returncode == 1, done.stderr
    assert "  loading weights" in done.stderr  # the log's tail
    assert (
        done.stderr.splitlines()[-1] == f"aiperf-hpc: error: http://127.0.0.1:{port}/health did not answer within 1 s"
    )
    assert "Traceback" not in done.stderr
    wait_for(lambda: not processes_tagged(tag), 10, "the server to end")


def test_a_server_that_exits_early_fails_at_once(tmp_path: Path) -> None:
    tag, port = new_tag(), free_port()
    path = mock_recipe(tmp_path, port)
    recipe = yaml.safe_load(path.read_text())
    recipe["server"]["command"] = "echo 'CUDA out of memory'; exit 3"  # shell code
    path.write_text(yaml.safe_dump(recipe))
    done = run_recipe(path, tag)
    assert done.returncode == 1, done.stderr
    assert "  CUDA out of memory" in done.stderr
    assert "the server exited with code 3 before" in done.stderr.splitlines()[-1]
    assert not (tmp_path / "art" / "profile_export.json").exists()


def test_sigint_during_the_run_stops_the_profile_and_the_server(tmp_path: Path) -> None:
    tag, port = new_tag(), free_port()
    path = mock_recipe(tmp_path, port, concurrency=2, **{"request-count": 100000})
    process = subprocess.Popen(
        [*CLI, "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tagged_env(tag)
    )
    try:
        records = tmp_path / "art" / "records.jsonl"
        wait_for(lambda: records.exists() and records.stat().st_size > 0, 60, "the first records")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == 130, stderr
    assert '"interrupted"' in (tmp_path / "art" / "profile_export.json").read_text()
    assert "aiperf-hpc: stopping the server" in stderr and "Traceback" not in stderr
    wait_for(lambda: not processes_tagged(tag), 10, "the server and every service to end")
    assert port_closed(port)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_server_loads_stops_it(tmp_path: Path, signum: signal.Signals, code: int) -> None:
    tag, port = new_tag(), free_port()
    path = mock_recipe(tmp_path, port)
    recipe = yaml.safe_load(path.read_text())
    slow_server = "import time; print('loading', flush=True); time.sleep(120)"  # ok: loads longer than the test runs
    recipe["server"]["command"] = [sys.executable, "-c", slow_server]
    path.write_text(yaml.safe_dump(recipe))
    process = subprocess.Popen(
        [*CLI, "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tagged_env(tag)
    )
    try:
        log = tmp_path / "art" / "server.log"
        wait_for(lambda: log.exists() and "loading" in log.read_text(), 60, "the server to start")
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == code, stderr
    assert "aiperf-hpc: stopping the server" in stderr and "Traceback" not in stderr
    wait_for(lambda: not processes_tagged(tag), 10, "the server to end")
