"""`aiperf-hpc profile` inside real Slurm allocations of the local cluster, against the real mock server."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import mock_server, new_tag, processes_tagged, tagged_env, wait_for
from tests.slurm.conftest import SlurmCluster

pytestmark = pytest.mark.slurm

PYTHON = sys.executable
RUN_TIMEOUT_S = 180.0


def profile_command(url: str, artifact_dir: Path, *extra: str) -> str:
    args = [PYTHON, "-m", "aiperf_hpc.cli", "profile", "-m", "mock-model", "-u", url, "--streaming"]
    args += ["--osl", "4", "--isl", "32", "--zmq-host", "127.0.0.1", "--artifact-dir", str(artifact_dir), *extra]
    return " ".join(args)


def records(artifact_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (artifact_dir / "records.jsonl").read_text().splitlines()]


def test_sbatch_three_nodes_two_workers_each(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    tag = new_tag()
    artifact_dir = tmp_path / "art"
    with mock_server("--ttft-ms", "5") as server:
        command = profile_command(server.url, artifact_dir, "--concurrency", "12", "--request-count", "240")
        job = slurm_cluster.sbatch_wait(
            f"#!/bin/bash\n{command}\n",
            "--nodes=3",
            "--ntasks-per-node=2",
            directory=tmp_path,
            timeout_s=RUN_TIMEOUT_S,
            env=tagged_env(tag),
        )
        stats = server.stats()
    output = job.output
    assert job.state.exit_code == 0, output
    assert "launcher slurm" in output
    assert stats["requests_total"] == 240
    seen = records(artifact_dir)
    assert len(seen) == 240 and all(r["error_type"] is None for r in seen)
    assert len({r["node"] for r in seen}) == 3
    assert len({r["worker_id"] for r in seen}) == 6
    assert all(r["clock_offset_bound_ns"] is not None for r in seen)
    metadata = json.loads((artifact_dir / "profile_export.json").read_text())["metadata"]
    assert metadata["slurm"]["ntasks"] == "6"
    assert not (artifact_dir / ".keys").exists()
    wait_for(lambda: not processes_tagged(tag), 20, "every aiperf process of the job to end")


def test_salloc_uses_part_of_the_allocation(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    artifact_dir = tmp_path / "art"
    with mock_server() as server:
        command = profile_command(server.url, artifact_dir, "--concurrency", "4", "--request-count", "40")
        done = slurm_cluster.salloc(
            "--nodes=3",
            "--ntasks-per-node=2",
            *command.split(),
            "--nodes",
            "2",
            "--workers-per-node",
            "1",
            timeout_s=RUN_TIMEOUT_S,
        )
    assert done.returncode == 0, done.stderr
    seen = records(artifact_dir)
    assert len(seen) == 40
    assert len({r["node"] for r in seen}) == 2 and len({r["worker_id"] for r in seen}) == 2


@pytest.mark.parametrize(("policy", "exit_code"), [("continue", 0), ("abort", 1)])
def test_a_killed_worker_task(slurm_cluster: SlurmCluster, tmp_path: Path, policy: str, exit_code: int) -> None:
    tag = new_tag()
    artifact_dir = tmp_path / "art"
    with mock_server("--ttft-ms", "40") as server:
        command = profile_command(
            server.url, artifact_dir, "--concurrency", "4", "--request-count", "400", "--on-worker-loss", policy
        )
        job = slurm_cluster.sbatch(
            f"#!/bin/bash\n{command}\n", "--nodes=2", "--ntasks-per-node=1", directory=tmp_path, env=tagged_env(tag)
        )
        records_file = artifact_dir / "records.jsonl"
        wait_for(lambda: records_file.exists() and records_file.stat().st_size > 0, 90, "the first records")
        workers = [pid for pid in processes_tagged(tag) if "slurm-task" in Path(f"/proc/{pid}/cmdline").read_text()]
        victims = [pid for pid in workers if "SLURM_PROCID=1\0" in Path(f"/proc/{pid}/environ").read_text()]
        assert victims, "worker task 1 not found"
        os.kill(victims[0], signal.SIGKILL)
        state = slurm_cluster.wait_finished(job.job_id, RUN_TIMEOUT_S)
    assert state.exit_code == exit_code, job.output()
    assert "worker worker-1 lost" in job.output()
    exported = json.loads((artifact_dir / "profile_export.json").read_text())
    assert exported["run"]["request_count"] == len(records(artifact_dir))
    if policy == "continue":
        assert exported["run"]["request_count"] == 400
    wait_for(lambda: not processes_tagged(tag), 20, "every aiperf process of the job to end")


def test_scancel_leaves_no_process_and_writes_partial_results(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    tag = new_tag()
    artifact_dir = tmp_path / "art"
    with mock_server("--ttft-ms", "50") as server:
        command = profile_command(server.url, artifact_dir, "--concurrency", "4", "--request-count", "100000")
        # exec: the batch shell becomes the CLI, so the job's SIGTERM reaches the controller itself.
        job = slurm_cluster.sbatch(
            f"#!/bin/bash\nexec {command}\n",
            "--nodes=2",
            "--ntasks-per-node=2",
            directory=tmp_path,
            env=tagged_env(tag),
        )
        records_file = artifact_dir / "records.jsonl"
        wait_for(lambda: records_file.exists() and records_file.stat().st_size > 0, 90, "the first records")
        slurm_cluster.run(["scancel", "--batch", "--signal=TERM", str(job.job_id)])
        slurm_cluster.wait_finished(job.job_id, RUN_TIMEOUT_S)
    wait_for(lambda: (artifact_dir / "profile_export.json").exists(), 30, "partial results")
    assert '"interrupted"' in (artifact_dir / "profile_export.json").read_text()
    wait_for(lambda: not processes_tagged(tag), 30, "every aiperf process of the job to end")


def test_wrong_use_fails_fast(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    outside = os.environ.copy()
    for name in [n for n in outside if n.startswith("SLURM_")]:
        del outside[name]
    import subprocess

    done = subprocess.run(
        [PYTHON, "-m", "aiperf_hpc.cli", "profile", "-m", "m", "--launcher", "slurm"],
        capture_output=True,
        text=True,
        timeout=60,
        env=outside,
    )
    assert done.returncode == 2 and "needs a Slurm allocation" in done.stderr
    with mock_server() as server:
        command = profile_command(server.url, tmp_path / "art", "--workers-per-node", "3")
        too_many = slurm_cluster.salloc("--nodes=2", "--ntasks-per-node=1", *command.split(), timeout_s=RUN_TIMEOUT_S)
        unbindable = profile_command(server.url, tmp_path / "art2").replace(
            "127.0.0.1 --artifact", "no-such-host.invalid --artifact"
        )
        bad_host = slurm_cluster.salloc(
            "--nodes=2", "--ntasks-per-node=1", *unbindable.split(), timeout_s=RUN_TIMEOUT_S
        )
    assert too_many.returncode == 2
    assert "6 workers, but the allocation has 2 tasks" in too_many.stderr
    assert "Traceback" not in too_many.stderr
    assert bad_host.returncode == 2, bad_host.stderr
    assert "is --zmq-host an address of this host?" in bad_host.stderr and "Traceback" not in bad_host.stderr
