"""`aiperf-hpc serve` with slurm client groups on the local cluster: submitted, watched to the end, cancelled."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import mock_server, new_tag
from tests.integration.service_harness import API, running_service
from tests.slurm.conftest import SlurmCluster

pytestmark = pytest.mark.slurm


def slurm_body(cluster: SlurmCluster, options: dict[str, Any]) -> dict[str, Any]:
    # Every node of the local cluster is this machine, so the controller listens on loopback.
    return {
        "launcher": "slurm",
        "options": {"model": "mock-model", "zmq_host": "127.0.0.1", **options},
        "slurm": {"nodes": 1, "workers_per_node": 2, "time": "00:05:00", "partition": cluster.partition},
    }


def test_a_slurm_client_group_runs_as_a_job_to_completion(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    with mock_server() as server, running_service(tmp_path / "state", tag=new_tag(), cwd=tmp_path) as service:
        reply = service.call("POST", API, slurm_body(slurm_cluster, {"url": server.url, "request_count": 20}))
        assert reply.status == 201, reply.body
        group_id, job_id = reply.body["id"], reply.body["slurm_job_id"]
        try:
            group = service.wait_status(group_id, ("completed",), timeout_s=180)
        finally:
            with contextlib.suppress(AssertionError):
                slurm_cluster.scancel(int(job_id))
        results = service.call("GET", f"{API}/{group_id}/results")
    assert reply.body["status"] == "queued" and job_id is not None
    assert group["exit_code"] == 0 and group["error"] is None
    assert group["summary"]["request_count"] == 20 and group["summary"]["slurm_job_id"] == job_id
    assert results.status == 200 and results.body["run"]["success_count"] == 20
    assert (Path(group["artifact_dir"]) / "aiperf-hpc.sbatch").is_file()


def test_delete_cancels_the_job(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    with (
        mock_server("--ttft-ms", "5") as server,
        running_service(tmp_path / "state", tag=new_tag(), cwd=tmp_path) as service,
    ):
        body = slurm_body(slurm_cluster, {"url": server.url, "benchmark_duration": 300, "concurrency": 2})
        reply = service.call("POST", API, body)
        assert reply.status == 201, reply.body
        group_id, job_id = reply.body["id"], int(reply.body["slurm_job_id"])
        try:
            service.wait_status(group_id, ("running",), timeout_s=120)
            deleted = service.call("DELETE", f"{API}/{group_id}")
            group = service.wait_status(group_id, ("cancelled",), timeout_s=120)
        finally:
            with contextlib.suppress(AssertionError):
                slurm_cluster.scancel(job_id)
        state = slurm_cluster.job_state(job_id)
    assert deleted.status == 202
    assert group["error"] is not None and str(job_id) in group["error"]
    assert state is None or state.finished
