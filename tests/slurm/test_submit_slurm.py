"""`aiperf-hpc submit` on the local cluster: the script, and a whole experiment with a server step."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.slurm.conftest import SlurmCluster, slurm_env

pytestmark = pytest.mark.slurm

CLI = [sys.executable, "-m", "aiperf_hpc.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dry_run_prints_the_script_and_submits_nothing(tmp_path: Path) -> None:
    args = ["submit", "-m", "llama", "-u", "http://gpu01:8000", "--nodes", "2", "--workers-per-node", "4"]
    args += ["--time", "00:30:00", "--partition", "debug", "--artifact-dir", str(tmp_path / "art"), "--dry-run"]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=slurm_env())
    assert done.returncode == 0, done.stderr
    assert "#SBATCH --nodes=2" in done.stdout and "#SBATCH --ntasks-per-node=4" in done.stdout
    assert "--launcher slurm" in done.stdout
    assert not (tmp_path / "art").exists()


def test_bad_profile_options_are_refused_before_submitting(tmp_path: Path) -> None:
    args = ["submit", "-m", "llama", "--no-such-flag", "--nodes", "1", "--workers-per-node", "1", "--time", "1:00"]
    done = subprocess.run([*CLI, *args, "--dry-run"], capture_output=True, text=True, timeout=60, env=slurm_env())
    assert done.returncode == 2
    assert "no-such-flag" in done.stderr and "Traceback" not in done.stderr


def test_a_whole_experiment_with_the_mock_server_as_the_vllm_step(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    port = free_port()
    artifact_dir = tmp_path / "art"
    server = f"{sys.executable} -m aiperf_hpc.cli mock-server --host 127.0.0.1 --port {port} --ttft-ms 5"
    args = ["submit", "-m", "mock-model", "--streaming", "--concurrency", "4", "--request-count", "40", "--osl", "4"]
    args += ["--isl", "16", "--zmq-host", "127.0.0.1", "--nodes", "2", "--workers-per-node", "1"]
    args += ["--time", "00:05:00", "--partition", slurm_cluster.partition, "--server-command", server]
    args += ["--server-port", str(port), "--server-health-timeout", "60", "--artifact-dir", str(artifact_dir)]
    args += ["--job-name", slurm_cluster.new_job_name()]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=slurm_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    job_id = int(done.stdout.split()[2].rstrip(";"))
    state = slurm_cluster.wait_finished(job_id, 180)
    outputs = "\n".join(p.read_text() for p in artifact_dir.glob("slurm-*"))
    assert state.exit_code == 0, outputs
    exported = json.loads((artifact_dir / "profile_export.json").read_text())
    assert exported["run"]["request_count"] == 40 and exported["run"]["success_count"] == 40
    assert exported["run"]["nodes"] == 2  # the workers ran on the two load nodes, the server on the third
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # the job stopped its server step on the way out


def test_a_recipe_with_the_mock_server_as_its_server_step(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    port = free_port()
    artifact_dir = tmp_path / "art"
    recipe = {
        "artifact_dir": str(artifact_dir),
        "server": {
            # Shell code reading the recipe's env: both reach the server step.
            "command": 'exec "$PY" -m aiperf_hpc.cli mock-server --port "$MOCK_PORT" --ttft-ms 5',
            "env": {"PY": sys.executable, "MOCK_PORT": str(port)},
            "port": port,
            "health_timeout_s": 60,
        },
        "benchmark": {"model": "mock-model", "streaming": True, "concurrency": 4, "request-count": 40, "osl": 4},
        "slurm": {
            "partition": slurm_cluster.partition,
            "time": "00:05:00",
            "nodes": 2,
            "workers_per_node": 1,
            "job_name": slurm_cluster.new_job_name(),
        },
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    args = ["submit", str(path), "--set", "benchmark.isl=16", "--set", "benchmark.zmq-host=127.0.0.1"]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=slurm_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    job_id = int(done.stdout.split()[2].rstrip(";"))
    state = slurm_cluster.wait_finished(job_id, 180)
    outputs = "\n".join(p.read_text() for p in artifact_dir.glob("slurm-*"))
    assert state.exit_code == 0, outputs
    exported = json.loads((artifact_dir / "profile_export.json").read_text())
    assert exported["run"]["request_count"] == 40 and exported["run"]["success_count"] == 40
    assert exported["run"]["nodes"] == 2
    assert exported["metadata"]["config"]["inputs"]["isl_mean"] == 16  # --set reached the job
    assert (artifact_dir / "aiperf-hpc.sbatch").exists()
    assert "listening on" in next(artifact_dir.glob("server-*.log")).read_text()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # the job stopped its server step on the way out
