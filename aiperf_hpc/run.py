"""One `profile` run on this machine: prepare the artifact dir, run the controller, show the results.

Owns the run's temporary socket directory (removed however the run ends) and returns the exit code
that `core.outcome.decide_exit_code` picks; `cli.py` turns it into the process status.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import uvloop
from rich.console import Console

from aiperf_hpc.config import RunConfig
from aiperf_hpc.core.metrics import RunMetrics
from aiperf_hpc.core.outcome import RunOutcome, decide_exit_code
from aiperf_hpc.exit_codes import ExitCode
from aiperf_hpc.exporters.console import render_results
from aiperf_hpc.launch.local import LocalLauncher
from aiperf_hpc.protocol.addresses import ipc_addresses
from aiperf_hpc.runtime.bus import Bus
from aiperf_hpc.runtime.preflight import check_reachable
from aiperf_hpc.services.controller import Controller

ARTIFACTS = ("records.jsonl", "profile_export.json", "profile_export.csv", "inputs.json", "logs")


def run_profile(config: RunConfig) -> ExitCode:
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    run_dir = config.artifact_dir.resolve()
    _prepare_run_dir(run_dir)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="aiperf-hpc %(levelname)s: %(message)s")
    err.print(
        f"aiperf-hpc: {config.endpoint.request_url} model={config.endpoint.model} "
        f"concurrency={config.load.concurrency} workers={config.worker_count} -> {run_dir}",
        markup=False,
    )
    outcome, metrics = uvloop.run(_run(config, run_dir, lambda line: err.print(f"aiperf-hpc: {line}", markup=False)))
    if metrics is not None:
        render_results(metrics, title=f"aiperf-hpc results ({outcome.status})", console=out)
        out.print(f"Artifacts: {run_dir}", markup=False)
    code = decide_exit_code(outcome)
    if outcome.error:
        err.print(f"aiperf-hpc: error: {outcome.error}", markup=False)
    elif code is ExitCode.RUN_FAILED and outcome.request_count:
        err.print(
            f"aiperf-hpc: error: all {outcome.request_count} requests failed (see errors by type)",
            markup=False,
        )
    return code


async def _run(
    config: RunConfig, run_dir: Path, progress: Callable[[str], None]
) -> tuple[RunOutcome, RunMetrics | None]:
    await check_reachable(config.endpoint.url)
    socket_dir = Path(tempfile.mkdtemp(prefix="aiperf-hpc-"))
    bus = Bus()
    try:
        controller = Controller(
            config=config,
            run_dir=run_dir,
            addresses=ipc_addresses(socket_dir),
            bus=bus,
            launcher=LocalLauncher(run_dir / "logs"),
            progress=progress,
        )
        outcome = await controller.run()
        results = controller.results
        metrics = None if results is None else RunMetrics.model_validate(results.metrics)
        return outcome, metrics
    finally:
        bus.close()
        shutil.rmtree(socket_dir, ignore_errors=True)


def _prepare_run_dir(run_dir: Path) -> None:
    """Create the artifact dir and remove a previous run's artifacts, so nothing stale is mixed in."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ARTIFACTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
