from __future__ import annotations

import pytest

from aiperf_hpc.config import ClusterConfig
from aiperf_hpc.core.placement import SLURM_TASK_ID, decide_placement, srun_worker_command
from aiperf_hpc.errors import UsageError

JOB = {
    "SLURM_JOB_ID": "77",
    "SLURM_NTASKS": "6",
    "SLURM_JOB_NODELIST": "node[1-3]",
    "SLURM_TASKS_PER_NODE": "2(x3)",
    "SLURM_JOB_PARTITION": "debug",
}


def test_auto_is_local_outside_an_allocation_and_for_a_single_task() -> None:
    assert decide_placement(ClusterConfig(), {}).launcher == "local"
    single = decide_placement(ClusterConfig(), {"SLURM_JOB_ID": "5", "SLURM_NTASKS": "1"})
    assert (single.launcher, single.reason) == ("local", "auto: Slurm job 5 has a single task")


def test_auto_inside_a_multi_task_allocation_uses_every_node_and_task() -> None:
    placement = decide_placement(ClusterConfig(), JOB)
    assert placement.launcher == "slurm"
    assert placement.nodes == ("node1", "node2", "node3")
    assert placement.workers_per_node == 2 and placement.slurm_workers == 6
    assert (placement.job_id, placement.partition, placement.allocation_tasks) == ("77", "debug", 6)


def test_part_of_the_allocation() -> None:
    placement = decide_placement(ClusterConfig(launcher="slurm", nodes=2, workers_per_node=3), JOB)
    assert placement.nodes == ("node1", "node2") and placement.slurm_workers == 6


def test_submit_scripts_can_restrict_the_nodes() -> None:
    env = {**JOB, "AIPERF_HPC_NODELIST": "node[2-3]"}
    assert decide_placement(ClusterConfig(), env).nodes == ("node2", "node3")


@pytest.mark.parametrize(
    ("cluster", "env", "message"),
    [
        (ClusterConfig(launcher="slurm"), {}, "needs a Slurm allocation"),
        (ClusterConfig(launcher="slurm", nodes=4), JOB, "--nodes 4 but the allocation has 3 nodes"),
        (ClusterConfig(launcher="slurm", workers_per_node=3), JOB, "9 workers, but the allocation has 6 tasks"),
        (ClusterConfig(launcher="slurm"), {"SLURM_JOB_ID": "1", "SLURM_NTASKS": "2"}, "no SLURM_JOB_NODELIST"),
    ],
)
def test_impossible_requests_fail_fast(cluster: ClusterConfig, env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        decide_placement(cluster, env)


def test_the_srun_step() -> None:
    placement = decide_placement(ClusterConfig(launcher="slurm"), JOB)
    command = srun_worker_command(placement, python="/py", control_address="tcp://10.0.0.1:5555", overlap=True)
    assert command[:7] == [
        "srun",
        "--nodes=3",
        "--ntasks=6",
        "--ntasks-per-node=2",
        "--nodelist=node1,node2,node3",
        "--kill-on-bad-exit=0",
        "--job-name=aiperf-hpc-workers",
    ]
    assert "--overlap" in command
    assert command[-3:] == ["worker", SLURM_TASK_ID, "tcp://10.0.0.1:5555"]
