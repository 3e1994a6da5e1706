"""`aiperf-hpc submit`: an sbatch script for a whole experiment, from profile options or a recipe."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from aiperf_hpc.cli.recipe import SET_HELP
from aiperf_hpc.errors import UsageError

_NO_EMPTY = {"negative_iterable": ()}


def submit(
    *profile_args: Annotated[str, Parameter(allow_leading_hyphen=True, show=False)],
    nodes: Annotated[
        int | None, Parameter(help="Nodes for the workers (plus --server-nodes with a server). Required.")
    ] = None,
    workers_per_node: Annotated[int | None, Parameter(help="Workers (Slurm tasks) per node. Required.")] = None,
    time: Annotated[str | None, Parameter(help="Job time limit, HH:MM:SS or D-HH:MM:SS. Required.")] = None,
    partition: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    server_command: Annotated[
        str | None, Parameter(help="Start this server (e.g. vLLM) as its own step and profile it.")
    ] = None,
    server_nodes: int = 1,
    server_port: int = 8000,
    server_health_timeout: Annotated[float, Parameter(help="Seconds to wait for the server's /health.")] = 900.0,
    job_name: str = "aiperf-hpc",
    extra_sbatch: Annotated[list[str] | None, Parameter(help="Extra sbatch option (repeat).", **_NO_EMPTY)] = None,
    setup: Annotated[
        list[str] | None, Parameter(help="Shell line run first, e.g. 'module load ...'.", **_NO_EMPTY)
    ] = None,
    python: Annotated[str | None, Parameter(help="aiperf-hpc's Python on the nodes (default: this one).")] = None,
    set_: Annotated[list[str] | None, Parameter(name="--set", help=SET_HELP, **_NO_EMPTY)] = None,
    dry_run: Annotated[bool, Parameter(help="Print the sbatch script instead of submitting it.")] = False,
) -> int:
    """Write an sbatch script for a whole experiment (optional server step + profile) and submit it.

    Every option not listed here is a `profile` option and goes to the profile in the job. Or give
    one recipe file (`submit recipe.yaml`), whose slurm section holds these options."""
    from aiperf_hpc.core.sbatch import SubmitOptions
    from aiperf_hpc.launch.submit import submit as submit_job
    from aiperf_hpc.options import parse_profile_argv
    from aiperf_hpc.recipe import is_recipe_path, load_recipe, submit_plan

    args = list(profile_args)
    own_options = {
        "--nodes": (nodes, None),
        "--workers-per-node": (workers_per_node, None),
        "--time": (time, None),
        "--partition": (partition, None),
        "--account": (account, None),
        "--qos": (qos, None),
        "--server-command": (server_command, None),
        "--server-nodes": (server_nodes, 1),
        "--server-port": (server_port, 8000),
        "--server-health-timeout": (server_health_timeout, 900.0),
        "--job-name": (job_name, "aiperf-hpc"),
        "--extra-sbatch": (extra_sbatch, None),
        "--setup": (setup, None),
        "--python": (python, None),
    }
    if args and is_recipe_path(args[0]):
        if len(args) > 1:
            raise UsageError(f"with a recipe, put profile options in its benchmark section, not {args[1]!r}")
        given = [name for name, (value, default) in own_options.items() if value != default]
        if given:
            raise UsageError(f"with a recipe, put {given[0]} in its slurm or server section")
        recipe_path = Path(args[0])
        options, args = submit_plan(load_recipe(recipe_path, set_), recipe_path)
    else:
        if set_:
            raise UsageError("--set needs a recipe file")
        missing = [name for name in ("--nodes", "--workers-per-node", "--time") if own_options[name][0] is None]
        if missing:
            raise UsageError(f"submit needs {', '.join(missing)} (or a recipe file)")
        assert nodes is not None and workers_per_node is not None and time is not None  # checked above
        try:
            parse_profile_argv(args)  # refuse now what the job would refuse after waiting in the queue
        except UsageError as exc:
            raise UsageError(f"profile options: {exc}") from None
        artifact_dir = Path("artifacts") / job_name
        if "--artifact-dir" in args:  # the job passes its own; this one becomes the job's artifact dir
            index = args.index("--artifact-dir")
            if index + 1 >= len(args):
                raise UsageError("--artifact-dir needs a value")
            artifact_dir = Path(args[index + 1])
            del args[index : index + 2]
        options = SubmitOptions(
            nodes=nodes,
            workers_per_node=workers_per_node,
            partition=partition,
            account=account,
            time=time,
            qos=qos,
            server_command=server_command,
            server_nodes=server_nodes,
            server_health_timeout_s=server_health_timeout,
            server_port=server_port,
            job_name=job_name,
            artifact_dir=artifact_dir,
            extra_sbatch=extra_sbatch or [],
            python=python or sys.executable,
            setup=setup or [],
        )
    result = submit_job(options, args, dry_run=dry_run)
    print(result if dry_run else f"submitted job {result}; results in {options.artifact_dir}")
    return 0
