"""The `aiperf-hpc` command: parse options, build a validated config, hand over, exit.

This is the only module that calls `sys.exit`. Usage errors exit 2 with one line; runtime errors
exit 1 with one line; a run's exit code comes from `core.outcome.decide_exit_code`.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Annotated

from cyclopts import App, CycloptsError, Parameter
from pydantic import ValidationError
from rich.console import Console

from aiperf_hpc import __version__
from aiperf_hpc.cli_options import (
    ClusterOptions,
    ConversationOptions,
    EndpointOptions,
    InputOptions,
    LoadOptions,
    OutputOptions,
    ScheduleOptions,
    build_run_configs,
    describe_validation_error,
)
from aiperf_hpc.errors import AiperfError, RunError, UsageError
from aiperf_hpc.exit_codes import ExitCode

_NO_EMPTY = {"negative_iterable": ()}

app = App(
    name="aiperf-hpc",
    help="Benchmark OpenAI-compatible LLM inference servers, from a laptop to a Slurm allocation.",
    version=__version__,
)


@app.command
def profile(
    *,
    endpoint: EndpointOptions,
    load: LoadOptions = LoadOptions(),
    schedule: ScheduleOptions = ScheduleOptions(),
    inputs: InputOptions = InputOptions(),
    conversations: ConversationOptions = ConversationOptions(),
    output: OutputOptions = OutputOptions(),
    cluster: ClusterOptions = ClusterOptions(),
) -> int:
    """Measure a server: TTFT, ITL, latency, throughput and goodput under a given load."""
    from aiperf_hpc.dataset.check import check_inputs
    from aiperf_hpc.run_profile import run_profiles

    runs = build_run_configs(endpoint, load, schedule, inputs, conversations, output, cluster)
    first = runs[0][1]  # every point of a sweep reads the same inputs
    check_inputs(first.inputs, fixed_schedule=first.load.fixed_schedule)
    return int(run_profiles(runs))


_SET_HELP = "Override a recipe value: KEY=VALUE, KEY dotted (benchmark.concurrency=8), VALUE as YAML (repeat)."


@app.command(name="run")
def run_recipe(
    recipe: Annotated[Path, Parameter(help="The recipe file (YAML): server, benchmark(s), slurm.")],
    /,
    *,
    set_: Annotated[list[str] | None, Parameter(name="--set", help=_SET_HELP, **_NO_EMPTY)] = None,
) -> int:
    """Run a recipe here: start its server, wait for its health, run its benchmark(s), stop the server.

    See docs/recipes.md for the format."""
    from aiperf_hpc.recipe import load_recipe
    from aiperf_hpc.run_recipe import run_recipe as run

    return int(run(load_recipe(recipe, set_), recipe))


@app.command
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
    set_: Annotated[list[str] | None, Parameter(name="--set", help=_SET_HELP, **_NO_EMPTY)] = None,
    dry_run: Annotated[bool, Parameter(help="Print the sbatch script instead of submitting it.")] = False,
) -> int:
    """Write an sbatch script for a whole experiment (optional server step + profile) and submit it.

    Every option not listed here is a `profile` option and goes to the profile in the job. Or give
    one recipe file (`submit recipe.yaml`), whose slurm section holds these options."""
    from aiperf_hpc.launch.submit import SubmitOptions
    from aiperf_hpc.launch.submit import submit as submit_job
    from aiperf_hpc.profile_args import parse_profile_argv
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


# MockServerConfig field -> the mock-server option a user typed.
_MOCK_OPTION_NAMES = {
    "default_output_tokens": "--output-tokens",
    "error_statuses": "--error-status",
    "faults": "--fault",
    "model_names": "--model-name",
    "send_usage": "--usage",
}


@app.command(name="mock-server")
def mock_server(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    ttft_ms: Annotated[float, Parameter(help="Time to first token.")] = 0.0,
    itl_ms: Annotated[float, Parameter(help="Time between tokens.")] = 0.0,
    output_tokens: Annotated[int, Parameter(help="Tokens per response when a request sets no max_tokens.")] = 16,
    error_rate: Annotated[float, Parameter(help="Fraction of requests answered with --error-status.")] = 0.0,
    error_status: Annotated[
        str, Parameter(help="Status of injected errors; a comma-separated list draws among them (429,503).")
    ] = "500",
    fault: Annotated[
        list[str] | None,
        Parameter(
            negative_iterable=(),
            help="KIND=FRACTION (repeat): disconnect, truncate, malformed, no-done, stall, non-json.",
        ),
    ] = None,
    model_name: Annotated[
        list[str] | None, Parameter(negative_iterable=(), help="Model names served (repeat).")
    ] = None,
    random_seed: int = 0,
    usage: Annotated[bool, Parameter(help="Report token usage (--no-usage: never, like some servers).")] = True,
    zero_work: Annotated[
        bool, Parameter(negative=(), help="Answer fixed bytes in one write: the client's own ceiling (benchmarks).")
    ] = False,
) -> int:
    """Run the bundled OpenAI-compatible mock server (no GPU needed)."""
    from aiperf_hpc.mock_server.config import MockServerConfig
    from aiperf_hpc.mock_server.faults import parse_fault, parse_statuses
    from aiperf_hpc.mock_server.server import run_mock_server

    try:
        statuses = parse_statuses(error_status)
        faults = dict(parse_fault(spec) for spec in fault or [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if len(faults) < len(fault or []):
        raise UsageError("--fault names the same kind twice")
    try:
        config = MockServerConfig(
            ttft_ms=ttft_ms,
            itl_ms=itl_ms,
            default_output_tokens=output_tokens,
            error_rate=error_rate,
            error_statuses=statuses,
            faults=faults,
            random_seed=random_seed,
            model_names=model_name or ["mock-model"],
            send_usage=usage,
            zero_work=zero_work,
        )
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, _MOCK_OPTION_NAMES)) from None
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {port}")
    try:
        run_mock_server(config, host=host, port=port)
    except OSError as exc:
        raise RunError(f"mock server cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0


@app.command
def serve(
    *,
    host: Annotated[str, Parameter(help="Address to listen on; beyond loopback a token is required.")] = "127.0.0.1",
    port: int = 8003,
    token: Annotated[
        str | None,
        Parameter(
            env_var="AIPERF_HPC_SERVICE_TOKEN",
            help="Every /api request must send 'Authorization: Bearer TOKEN' (prefer the environment variable).",
        ),
    ] = None,
    state_dir: Annotated[Path, Parameter(help="Where the run list (SQLite) and each run's artifacts go.")] = Path(
        "aiperf-service"
    ),
) -> int:
    """Serve the client-group REST API: create, watch and stop profile runs over HTTP (docs at /docs)."""
    from aiperf_hpc.rest.app import serve as serve_api

    return serve_api(host=host, port=port, token=token, state_dir=state_dir)


@app.command
def report(directory: Annotated[Path, Parameter(help="A run's (or a sweep's) artifact directory.")], /) -> int:
    """Write DIRECTORY/report.html (one self-contained page that opens offline) and DIRECTORY/plots/*.png."""
    from aiperf_hpc.reporting.report import write_report

    print(f"report: {write_report(directory)}")
    return 0


@app.command
def recompute(directory: Annotated[Path, Parameter(help="A run's artifact directory.")], /) -> int:
    """Rebuild DIRECTORY/profile_export.json and .csv from DIRECTORY/records.jsonl (and run_config.json),
    e.g. after the records service died mid-run."""
    from aiperf_hpc.results.pipeline import recompute as recompute_run
    from aiperf_hpc.results.tables import render_results

    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    results = recompute_run(directory)
    render_results(results.metrics, title="aiperf-hpc results (recomputed)", console=Console(highlight=False))
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    if results.torn_record_lines:
        errors.print(f"aiperf-hpc: skipped {results.torn_record_lines} undecodable record line(s)", markup=False)
    for warning in results.validity.warnings:
        errors.print(f"aiperf-hpc: warning: {warning}", markup=False)
    print(f"recompute: {results.export_path}")
    return 0


runs_app = App(name="runs", help="Past runs: list them from their artifact directories.")
app.command(runs_app)


@runs_app.command(name="list")
def runs_list(
    root: Annotated[Path, Parameter(help="Where to look for runs (searched recursively).")] = Path("artifacts"),
    /,
    *,
    as_json: Annotated[bool, Parameter(name="--json", negative=(), help="Print JSON instead of a table.")] = False,
) -> int:
    """One row per run under ROOT: id, date, model, endpoint, load, key metrics, Slurm job id."""
    import orjson

    from aiperf_hpc.reporting.runs import find_runs, render_runs_table, runs_as_json

    found = find_runs(root)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    for problem in found.problems:
        errors.print(f"aiperf-hpc: warning: skipped {problem}", markup=False)
    if as_json:
        print(orjson.dumps(runs_as_json(found.rows), option=orjson.OPT_INDENT_2).decode())
    elif found.rows:
        render_runs_table(found.rows, root=root, console=Console(highlight=False))
    else:
        errors.print(f"aiperf-hpc: no runs under {root} (no profile_export.json found)", markup=False)
    return 0


@app.command
def compare(
    *run_dirs: Annotated[Path, Parameter(help="Run directories; the first is the baseline.")],
    as_json: Annotated[bool, Parameter(name="--json", negative=(), help="Print JSON instead of a table.")] = False,
) -> int:
    """Key metrics of runs side by side, with each run's change relative to the first."""
    import orjson

    from aiperf_hpc.reporting.compare import comparison_as_json, load_comparison, render_comparison

    comparison = load_comparison(run_dirs)
    if as_json:
        print(orjson.dumps(comparison_as_json(comparison), option=orjson.OPT_INDENT_2).decode())
    else:
        render_comparison(comparison, console=Console(highlight=False))
    return 0


def main(argv: list[str] | None = None) -> None:
    # Whatever the caller's umask, nothing a command or its child processes create (artifacts, logs,
    # sbatch scripts, reports) is writable by other users; group bits are left as the caller set them.
    os.umask(os.umask(0) | 0o002)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        result = app(argv, exit_on_error=False, print_error=False, result_action="return_value")
    except CycloptsError as exc:
        text = " ".join(str(exc).split())
        errors.print(f"aiperf-hpc: error: {text}", markup=False)
        sys.exit(ExitCode.USAGE)
    except UsageError as exc:
        errors.print(f"aiperf-hpc: error: {exc}", markup=False)
        sys.exit(ExitCode.USAGE)
    except AiperfError as exc:
        errors.print(f"aiperf-hpc: error: {exc}", markup=False)
        sys.exit(ExitCode.RUN_FAILED)
    except KeyboardInterrupt:
        errors.print("aiperf-hpc: interrupted", markup=False)
        sys.exit(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # `aiperf-hpc ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ExitCode.SUCCESS)
    # The interpreter's last garbage collections would walk every object of the run (tens of ms
    # of the wall time); frozen, they skip them, and the memory goes back with the process anyway.
    gc.freeze()
    sys.exit(result if isinstance(result, int) else ExitCode.SUCCESS)


if __name__ == "__main__":
    main()
