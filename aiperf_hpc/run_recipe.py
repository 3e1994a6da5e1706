"""`aiperf-hpc run RECIPE`: start the recipe's server here, wait for its health, profile it, stop it.

Every benchmark is parsed and its inputs checked before the server starts, so a typo costs no model
load. The benchmarks run in-process through `run_profile.run_profiles`, as `aiperf-hpc profile` runs them.
The server is stopped on every way out: the benchmarks finished or failed, the health wait failed,
Ctrl-C (SIGINT) or SIGTERM. The exit code is the benchmarks' (the first non-zero one of a list), 1
when the server never became healthy, 130 / 143 on a signal.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

from rich.console import Console

from aiperf_hpc.artifacts import SERVER_LOG
from aiperf_hpc.config import RunConfig
from aiperf_hpc.core.outcome import CombinedExitCode
from aiperf_hpc.dataset.check import check_inputs
from aiperf_hpc.errors import RunError, UsageError
from aiperf_hpc.exit_codes import ExitCode
from aiperf_hpc.launch.server import LocalServer, answers
from aiperf_hpc.recipe import Recipe, Server, benchmark_runs
from aiperf_hpc.run_profile import run_profiles

LOG_TAIL_LINES = 50

Benchmarks = list[tuple[str, list[tuple[str, RunConfig]]]]


class _Terminated(BaseException):
    """SIGTERM outside a profile run (the controller handles it inside one); a BaseException so
    that no `except Exception` on the way swallows it."""


def run_recipe(recipe: Recipe, source: Path) -> ExitCode:
    """Run the recipe read from `source`. Raises UsageError for a recipe that cannot run, RunError
    when the server cannot start or never answers its health URL, KeyboardInterrupt on Ctrl-C
    (after stopping the server)."""
    benchmarks = benchmark_runs(recipe, source)
    for _, runs in benchmarks:
        first = runs[0][1]  # every point of a sweep reads the same inputs
        check_inputs(first.inputs, fixed_schedule=first.load.fixed_schedule)
    if recipe.server is None:
        return _run_benchmarks(benchmarks)
    assert recipe.artifact_dir is not None  # load_recipe sets it
    return _run_with_server(recipe.server, Path(recipe.artifact_dir), benchmarks)


def _run_with_server(server_recipe: Server, artifact_dir: Path, benchmarks: Benchmarks) -> ExitCode:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    health_urls = server_recipe.health_urls
    for url in health_urls:
        if answers(url):
            raise UsageError(f"something already answers {url}; stop it or change server.port")
    try:
        artifact_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot use artifact_dir {artifact_dir}: {exc.strerror or exc}") from None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    server: LocalServer | None = None
    try:
        server = LocalServer.start(server_recipe.argv(), server_recipe.env, artifact_dir / SERVER_LOG)
        err.print(f"aiperf-hpc: server (pid {server.pid}) starting, log {server.log_path}", markup=False)
        try:
            took_s = server.wait_healthy(health_urls, server_recipe.health_timeout_s)
        except RunError:
            err.print(f"aiperf-hpc: last {LOG_TAIL_LINES} lines of {server.log_path}:", markup=False)
            for line in server.log_tail(LOG_TAIL_LINES):
                err.print(f"  {line}", markup=False)
            raise
        err.print(f"aiperf-hpc: server answers {' and '.join(health_urls)} after {took_s:.1f} s", markup=False)
        return _run_benchmarks(benchmarks)
    except _Terminated:
        err.print("aiperf-hpc: SIGTERM", markup=False)
        return ExitCode.TERMINATED
    finally:
        if server is not None:
            err.print("aiperf-hpc: stopping the server", markup=False)
            if not server.stop():
                err.print(f"aiperf-hpc: warning: the server (pid {server.pid}) did not stop", markup=False)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _run_benchmarks(benchmarks: Benchmarks) -> ExitCode:
    """Each benchmark in turn, as a sweep runs its points: a signal stops the list, a failure does
    not; the first non-zero code is the result."""
    final = CombinedExitCode()
    for index, (name, runs) in enumerate(benchmarks):
        if len(benchmarks) > 1:
            print(f"aiperf-hpc: benchmark {name} ({index + 1}/{len(benchmarks)})", file=sys.stderr, flush=True)
        handler = signal.getsignal(signal.SIGTERM)
        try:
            code = run_profiles(runs)
        finally:
            if handler is not None:  # the controller's event loop takes SIGTERM over and leaves the default
                signal.signal(signal.SIGTERM, handler)
        if final.add(code):
            return final.code
    return final.code
