"""The `aiperf-hpc` app: the commands of this package assembled, and the one place that exits.

`main` is the only function that calls `sys.exit`. Usage errors exit 2 with one line; runtime errors
exit 1 with one line; a run's exit code comes from `core.outcome.decide_exit_code`.
"""

from __future__ import annotations

import gc
import os
import sys

from cyclopts import App, CycloptsError
from rich.console import Console

from aiperf_hpc import __version__
from aiperf_hpc.cli.mock_server import mock_server
from aiperf_hpc.cli.profile import profile
from aiperf_hpc.cli.recipe import run_recipe
from aiperf_hpc.cli.results import compare, recompute, report, runs_app
from aiperf_hpc.cli.serve import serve
from aiperf_hpc.cli.submit import submit
from aiperf_hpc.errors import AiperfError, UsageError
from aiperf_hpc.exit_codes import ExitCode

app = App(
    name="aiperf-hpc",
    help="Benchmark OpenAI-compatible LLM inference servers, from a laptop to a Slurm allocation.",
    version=__version__,
)
app.command(profile)
app.command(run_recipe, name="run")
app.command(submit)
app.command(mock_server, name="mock-server")
app.command(serve)
app.command(report)
app.command(recompute)
app.command(runs_app)
app.command(compare)


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
