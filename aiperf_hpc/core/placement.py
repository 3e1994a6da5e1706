"""Where the workers run: the launcher decision and the Slurm step, from the config and the job's
environment. Pure: the environment comes in as a mapping, commands go out as argument lists.

`--launcher auto` picks slurm when `SLURM_JOB_ID` is set and the allocation has more than one task,
else local. Inside an allocation the workers are one `srun` step: `nodes` x `workers_per_node`
tasks, each task one worker process whose id comes from its `SLURM_PROCID`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from aiperf_hpc.config import ClusterConfig
from aiperf_hpc.core.nodelist import expand_nodelist
from aiperf_hpc.errors import UsageError

NODELIST_OVERRIDE_ENV = "AIPERF_HPC_NODELIST"  # set by `submit` scripts: the load nodes of a split job


@dataclass(frozen=True, slots=True)
class Placement:
    launcher: Literal["local", "slurm"]
    reason: str
    nodes: tuple[str, ...] = ()  # slurm: the nodes the worker step uses
    workers_per_node: int = 0
    job_id: str | None = None
    partition: str | None = None
    allocation_tasks: int | None = None

    @property
    def slurm_workers(self) -> int:
        return len(self.nodes) * self.workers_per_node

    def metadata(self) -> dict[str, object]:
        return {
            "launcher": self.launcher,
            "reason": self.reason,
            "job_id": self.job_id,
            "nodes": list(self.nodes),
            "workers_per_node": self.workers_per_node,
            "partition": self.partition,
            "allocation_tasks": self.allocation_tasks,
        }


def decide_placement(cluster: ClusterConfig, env: Mapping[str, str]) -> Placement:
    """The launcher to use and, for Slurm, the worker step's shape; `UsageError` for impossible asks."""
    job_id = env.get("SLURM_JOB_ID")
    tasks = _int_env(env, "SLURM_NTASKS")
    if cluster.launcher == "local":
        return Placement("local", "--launcher local")
    if cluster.launcher == "auto":
        if job_id is None:
            return Placement("local", "auto: not inside a Slurm allocation (no SLURM_JOB_ID)")
        if (tasks or 1) <= 1:
            return Placement("local", f"auto: Slurm job {job_id} has a single task")
    if job_id is None:
        raise UsageError("--launcher slurm needs a Slurm allocation: run it inside sbatch or salloc")
    nodelist = env.get(NODELIST_OVERRIDE_ENV) or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist:
        raise UsageError(f"Slurm job {job_id} has no SLURM_JOB_NODELIST; is this a real allocation?")
    try:
        allocated = expand_nodelist(nodelist)
    except ValueError as exc:
        raise UsageError(f"cannot read the job's node list {nodelist!r}: {exc}") from None
    nodes = cluster.nodes or len(allocated)
    if nodes > len(allocated):
        raise UsageError(f"--nodes {nodes} but the allocation has {len(allocated)} nodes ({nodelist})")
    per_node = cluster.workers_per_node or _tasks_per_node(env) or 1
    if tasks is not None and nodes * per_node > tasks:
        raise UsageError(
            f"{nodes} nodes x {per_node} workers per node = {nodes * per_node} workers, "
            f"but the allocation has {tasks} tasks (ask for more with --ntasks-per-node)"
        )
    reason = "--launcher slurm" if cluster.launcher == "slurm" else f"auto: inside Slurm job {job_id}"
    return Placement(
        "slurm",
        reason,
        nodes=tuple(allocated[:nodes]),
        workers_per_node=per_node,
        job_id=job_id,
        partition=env.get("SLURM_JOB_PARTITION"),
        allocation_tasks=tasks,
    )


def srun_worker_command(placement: Placement, *, python: str, control_address: str, overlap: bool) -> list[str]:
    """The one `srun` step that starts every worker (one task per worker)."""
    command = [
        "srun",
        f"--nodes={len(placement.nodes)}",
        f"--ntasks={placement.slurm_workers}",
        f"--ntasks-per-node={placement.workers_per_node}",
        f"--nodelist={','.join(placement.nodes)}",
        "--kill-on-bad-exit=0",  # one dead worker is a lost worker, not a dead run
        "--job-name=aiperf-hpc-workers",
    ]
    if overlap:
        command.append("--overlap")
    return [*command, python, "-m", "aiperf_hpc.services", "worker", SLURM_TASK_ID, control_address]


SLURM_TASK_ID = "slurm-task"  # service id placeholder: each task becomes worker-<SLURM_PROCID>


def _int_env(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _tasks_per_node(env: Mapping[str, str]) -> int | None:
    """SLURM_NTASKS_PER_NODE, or the first count of SLURM_TASKS_PER_NODE ("2(x3)" -> 2)."""
    explicit = _int_env(env, "SLURM_NTASKS_PER_NODE")
    if explicit is not None:
        return explicit
    value = env.get("SLURM_TASKS_PER_NODE")
    if not value:
        return None
    first = value.split(",")[0].split("(")[0]
    return int(first) if first.isdigit() else None
