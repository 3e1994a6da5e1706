"""The local Slurm cluster itself behaves like the multi-node cluster the launcher tests assume.

These pin down the emulation's facts that the Slurm launcher relies on (docs/local-slurm.md): tasks spread
over distinct emulated nodes, told apart by SLURMD_NODENAME because they share one hostname; requests
larger than the partition fail at once instead of queueing; scancel ends a job's processes; salloc runs
its command on the submit host; a second step shares a busy allocation only with --overlap.
"""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.harness import wait_for
from tests.slurm.conftest import SlurmCluster, process_running

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(90)]

NODES = 3
TASKS_PER_NODE = 2
# A request that could queue would hit this bound: rejected requests return in milliseconds.
REJECT_TIMEOUT_S = 15.0
# scancel sends SIGTERM, then SIGKILL after KillWait (5 s in the local cluster's config).
CANCEL_TIMEOUT_S = 30.0
START_TIMEOUT_S = 30.0


def _need_nodes(cluster: SlurmCluster, count: int) -> None:
    assert len(cluster.nodes) >= count, (
        f"this test needs {count} nodes but partition {cluster.partition} has {cluster.nodes}: "
        f"scripts/local-slurm.sh stop && scripts/local-slurm.sh start --nodes {count}"
    )


def test_every_node_name_resolves_to_loopback(slurm_cluster: SlurmCluster) -> None:
    # ZeroMQ connects to a node by name hang when the name does not resolve.
    for node in slurm_cluster.nodes:
        assert socket.gethostbyname(node) == "127.0.0.1", node


def test_srun_spreads_tasks_over_distinct_nodes(slurm_cluster: SlurmCluster) -> None:
    _need_nodes(slurm_cluster, NODES)
    done = slurm_cluster.srun(
        f"--nodes={NODES}",
        f"--ntasks-per-node={TASKS_PER_NODE}",
        "bash",
        "-c",
        'echo "$SLURMD_NODENAME $SLURM_NODEID $SLURM_PROCID $(hostname)"',
    )

    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert len(rows) == NODES * TASKS_PER_NODE, done.stdout
    tasks_per_node = Counter(node for node, *_ in rows)
    assert len(tasks_per_node) == NODES
    assert set(tasks_per_node.values()) == {TASKS_PER_NODE}
    assert set(tasks_per_node) <= set(slurm_cluster.nodes)
    assert {node_id for _, node_id, *_ in rows} == {str(i) for i in range(NODES)}
    assert sorted(int(proc_id) for _, _, proc_id, _ in rows) == list(range(NODES * TASKS_PER_NODE))
    # Every emulated node is this machine, so hostname cannot tell tasks apart.
    assert len({hostname for *_, hostname in rows}) == 1


def test_sbatch_wait_runs_a_two_node_job(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text(
        '#!/bin/bash\necho "nodes $SLURM_JOB_NUM_NODES"\nsrun bash -c \'echo "task $SLURMD_NODENAME"\'\n'
    )
    name = slurm_cluster.new_job_name()

    done = slurm_cluster.run(
        ["sbatch", "--wait", "--nodes=2", "--ntasks-per-node=1", f"--job-name={name}", "--output=job.out", "job.sh"],
        job_name=name,
        cwd=tmp_path,
    )

    output = (tmp_path / "job.out").read_text()
    assert done.returncode == 0, done.stderr + output
    lines = output.splitlines()
    assert lines[0] == "nodes 2", output
    task_nodes = [line.removeprefix("task ") for line in lines[1:]]
    assert len(task_nodes) == 2
    assert len(set(task_nodes)) == 2


def test_sbatch_wait_reports_the_scripts_exit_code(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    finished = slurm_cluster.sbatch_wait("#!/bin/bash\necho before\nexit 3\n", directory=tmp_path)

    assert finished.state.state == "FAILED"
    assert finished.state.exit_code == 3
    assert finished.output == "before\n"


def test_salloc_runs_its_command_on_the_submit_host(slurm_cluster: SlurmCluster) -> None:
    command = (
        'echo "outer ${SLURMD_NODENAME:-none} $SLURM_JOB_NUM_NODES"; srun bash -c \'echo "step $SLURMD_NODENAME"\''
    )

    done = slurm_cluster.salloc("--nodes=2", "--ntasks-per-node=1", "bash", "-c", command)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # No slurmd started the outer command: it runs where salloc runs, and only its srun steps reach the nodes.
    assert lines[0] == "outer none 2", done.stdout
    step_nodes = {line.removeprefix("step ") for line in lines[1:]}
    assert len(step_nodes) == 2
    assert step_nodes <= set(slurm_cluster.nodes)


@pytest.mark.parametrize("too_much", ["nodes", "cpus"])
def test_a_request_larger_than_the_partition_fails_at_once(
    slurm_cluster: SlurmCluster, tmp_path: Path, too_much: str
) -> None:
    request = (
        [f"--nodes={len(slurm_cluster.nodes) + 1}"]
        if too_much == "nodes"
        else ["--nodes=1", f"--ntasks-per-node={slurm_cluster.cpus_per_node + 1}"]
    )
    srun = slurm_cluster.srun(*request, "true", timeout_s=REJECT_TIMEOUT_S)
    assert srun.returncode != 0
    assert "Unable to allocate resources" in srun.stderr

    name = slurm_cluster.new_job_name()
    sbatch = slurm_cluster.run(
        ["sbatch", f"--job-name={name}", f"--output={tmp_path}/out", *request, "--wrap=true"],
        timeout_s=REJECT_TIMEOUT_S,
        job_name=name,
    )
    assert sbatch.returncode != 0
    assert "Batch job submission failed" in sbatch.stderr
    queued = slurm_cluster.run(["squeue", "--noheader", f"--name={name}"], timeout_s=REJECT_TIMEOUT_S)
    assert queued.stdout.strip() == ""


def test_scancel_ends_the_jobs_processes(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    script = (
        f"#!/bin/bash\necho $$ > {pid_dir}/batch\nsrun bash -c 'echo $$ > {pid_dir}/$SLURMD_NODENAME; exec sleep 600'\n"
    )
    job = slurm_cluster.sbatch(script, "--nodes=2", "--ntasks-per-node=1", directory=tmp_path)

    def pids_written() -> bool:
        files = list(pid_dir.iterdir())
        return len(files) == 3 and all(path.read_text().strip().isdigit() for path in files)

    wait_for(pids_written, START_TIMEOUT_S, f"job {job.job_id} to start its tasks; output: {job.output()}")
    pids = {path.name: int(path.read_text()) for path in pid_dir.iterdir()}
    assert all(process_running(pid) for pid in pids.values()), pids

    slurm_cluster.scancel(job.job_id)

    wait_for(
        lambda: not any(process_running(pid) for pid in pids.values()),
        CANCEL_TIMEOUT_S,
        f"the processes of job {job.job_id} to end: {pids}",
    )
    assert slurm_cluster.wait_finished(job.job_id, CANCEL_TIMEOUT_S).state == "CANCELLED"


def test_overlap_lets_a_second_step_into_a_busy_allocation(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    # The first step holds every allocated CPU; without --overlap the second srun would wait for it.
    command = """
srun bash -c 'touch "started.$SLURM_PROCID"; exec sleep 600' &
busy=$!
for _ in $(seq 300); do
  [ -e started.0 ] && [ -e started.1 ] && break
  sleep 0.1
done
[ -e started.0 ] && [ -e started.1 ] || { echo "the first step did not start"; exit 3; }
srun --overlap bash -c 'echo "overlap $SLURMD_NODENAME"'
status=$?
kill -KILL "$busy"
exit $status
"""
    done = slurm_cluster.salloc("--nodes=2", "--ntasks-per-node=1", "bash", "-c", command, cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    overlap_nodes = {line.removeprefix("overlap ") for line in done.stdout.splitlines() if line.startswith("overlap ")}
    assert len(overlap_nodes) == 2, done.stdout
