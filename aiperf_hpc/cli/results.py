"""The commands that read finished runs: `report`, `recompute`, `runs list` and `compare`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from cyclopts import App, Parameter
from rich.console import Console

from aiperf_hpc.errors import UsageError


def report(directory: Annotated[Path, Parameter(help="A run's (or a sweep's) artifact directory.")], /) -> int:
    """Write DIRECTORY/report.html (one self-contained page that opens offline) and DIRECTORY/plots/*.png."""
    from aiperf_hpc.reporting.report import write_report

    print(f"report: {write_report(directory)}")
    return 0


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
