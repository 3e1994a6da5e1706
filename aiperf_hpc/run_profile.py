"""`profile` runs on this machine: prepare the artifact dir, run the controller, show the results.

Owns each run's temporary socket directory (removed however the run ends) and returns the exit code
that `core.outcome.decide_exit_code` picks; `cli` turns it into the process status. A sweep is
several runs in a row, each in its own artifact subdirectory, then a summary table across them.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import uvloop
from rich.console import Console

from aiperf_hpc.artifacts import REMOVED_BY_NEW_RUN
from aiperf_hpc.config import RunConfig
from aiperf_hpc.core.outcome import CombinedExitCode, RunOutcome, decide_exit_code
from aiperf_hpc.core.placement import Placement, decide_placement
from aiperf_hpc.errors import UsageError
from aiperf_hpc.exit_codes import ExitCode
from aiperf_hpc.launch.fork_server import FORK_SERVER_ID, ForkServer
from aiperf_hpc.launch.local import LocalLauncher
from aiperf_hpc.live.view import QuietView, RunPlan, make_view
from aiperf_hpc.protocol.addresses import ipc_addresses, tcp_bind_specs
from aiperf_hpc.runtime.bus import Bus
from aiperf_hpc.runtime.curve import KEY_FILE_ENV, CurveKeys, write_key_file
from aiperf_hpc.runtime.preflight import check_reachable
from aiperf_hpc.services.__main__ import SERVICES
from aiperf_hpc.services.__main__ import main as service_main

if TYPE_CHECKING:
    from aiperf_hpc.core.metrics import RunMetrics
    from aiperf_hpc.protocol.messages import ResultsReady
    from aiperf_hpc.runtime.metrics_server import MetricsServer

# What only the CLI needs (the controller, the metrics model, the tables, the live /metrics, the
# scraper) is imported after the fork server has started, in the functions below: on its own core it
# loads the services meanwhile, and what the CLI imports before the fork delays every service.

SERVICE_MODULES = [module for module, _ in SERVICES.values()]
ARTIFACTS = REMOVED_BY_NEW_RUN


def run_profiles(runs: list[tuple[str, RunConfig]]) -> ExitCode:
    """Run every configuration in turn. A sweep stops at a signal; otherwise it goes on after a failed
    point and exits with the first non-zero code."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="aiperf-hpc %(levelname)s: %(message)s")
    live = runs[0][1].live  # the same for every point of a sweep
    server = None
    if live.metrics_port is not None:
        from aiperf_hpc.runtime.metrics_server import MetricsServer

        server = MetricsServer(live.metrics_host, live.metrics_port)
    if len(runs) == 1:
        return run_profile(runs[0][1], metrics_server=server)[0]
    rows: list[tuple[str, RunMetrics]] = []
    final = CombinedExitCode()
    for label, config in runs:
        code, metrics = run_profile(config, label=label, metrics_server=server)
        if metrics is not None:
            rows.append((label, metrics))
        if final.add(code):
            return final.code
    from aiperf_hpc.results.sweep import render_sweep_summary, write_sweep_summary

    sweep_dir = runs[0][1].artifact_dir.resolve().parent
    write_sweep_summary(sweep_dir / "sweep_summary.json", sweep_dir / "sweep_summary.csv", rows)
    render_sweep_summary(rows, title="aiperf-hpc sweep summary", console=Console(highlight=False))
    return final.code


def run_profile(
    config: RunConfig, *, label: str = "", metrics_server: MetricsServer | None = None
) -> tuple[ExitCode, RunMetrics | None]:
    """One run: its progress on stderr (`--ui`), its live /metrics when `metrics_server` is given,
    its results table on stdout. Returns the exit code and the metrics (None when none were written)."""
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    config, placement = place(config, os.environ)
    err.print(f"aiperf-hpc: launcher {placement.launcher} ({placement.reason})", markup=False)
    run_dir = config.artifact_dir.resolve()
    _prepare_run_dir(run_dir)
    err.print(f"aiperf-hpc: {_describe(config)} -> {run_dir}", markup=False)
    view = make_view(config.live.ui, RunPlan.of(config), err)
    # Forked before any event loop runs here; it imports the services while the controller starts.
    fork_server = ForkServer.start(run_dir / "logs" / f"{FORK_SERVER_ID}.log", service_main, SERVICE_MODULES)
    try:
        launcher = LocalLauncher(run_dir / "logs", fork_server)
        outcome, results = uvloop.run(_run(config, run_dir, launcher, view, metrics_server))
    finally:
        if fork_server is not None:
            fork_server.close()
    metrics = None
    if results is not None:
        from aiperf_hpc.core.metrics import RunMetrics
        from aiperf_hpc.results.tables import render_results

        metrics = RunMetrics.model_validate(results.metrics)
        title = f"aiperf-hpc results{f' {label}' if label else ''} ({outcome.status})"
        render_results(metrics, title=title, console=out, server_metrics=results.server_metrics)
        out.print(f"Artifacts: {run_dir}", markup=False)
    code = decide_exit_code(outcome)
    if outcome.error:
        leading = _leading_error(metrics)
        because = f"; most frequent error: {leading}" if leading else ""
        err.print(f"aiperf-hpc: error: {outcome.error}{because}", markup=False)
        if not outcome.results_written and _has_records(run_dir):
            hint = f"`aiperf-hpc recompute {run_dir}` rebuilds the results from the records"
            err.print(f"aiperf-hpc: {hint}", markup=False)
    elif code is ExitCode.RUN_FAILED and outcome.request_count:
        err.print(f"aiperf-hpc: error: {_all_failed(outcome.request_count, metrics)}", markup=False)
    return code, metrics


def _has_records(run_dir: Path) -> bool:
    try:
        return (run_dir / "records.jsonl").stat().st_size > 0
    except OSError:
        return False


def _all_failed(request_count: int, metrics: RunMetrics | None) -> str:
    """One line for a run where every request failed, naming the most frequent error and what the
    server said, so a wrong model name reads as "3 with http_error:404: The model 'x' does not exist."
    rather than as a bare count."""
    line = f"all {request_count} requests failed"
    leading = _leading_error(metrics)
    return f"{line}; {leading}" if leading else f"{line} (see errors by type)"


def _leading_error(metrics: RunMetrics | None) -> str | None:
    """The most frequent error as `N with KEY: what the server said`; None when no request failed.
    It says why a run that failed on its requests (all of them, or past --failure-threshold) failed:
    a server that died mid-run reads as connection errors."""
    if metrics is None or not metrics.errors_by_type:
        return None
    key, summary = next(iter(metrics.errors_by_type.items()))  # most frequent first
    sample = _server_message(summary.sample_message or "")
    return f"{summary.count} with {key}: {sample}" if sample else f"{summary.count} with {key}"


_SHOWN_MESSAGE_CHARS = 200


def _server_message(text: str) -> str:
    """A response body shortened to one line; an OpenAI-style error body (`{"error": {"message": ...}}`,
    or vLLM's top-level `message`) is reduced to its message."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message.strip():
            text = message
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _SHOWN_MESSAGE_CHARS else one_line[: _SHOWN_MESSAGE_CHARS - 3] + "..."


def place(config: RunConfig, env: Mapping[str, str]) -> tuple[RunConfig, Placement]:
    """Decide the launcher and make the config concrete: `slurm` workers are nodes x per-node tasks,
    reached over TCP on `--zmq-host` (default: this host's address as the nodes resolve it)."""
    placement = decide_placement(config.cluster, env)
    if placement.launcher == "local":
        return config.model_copy(update={"cluster": config.cluster.model_copy(update={"launcher": "local"})}), placement
    cluster = config.cluster.model_copy(
        update={
            "launcher": "slurm",
            "nodes": len(placement.nodes),
            "workers_per_node": placement.workers_per_node,
            "zmq_host": config.cluster.zmq_host or _reachable_host(),
        }
    )
    return config.model_copy(update={"cluster": cluster, "workers": placement.slurm_workers}), placement


def _reachable_host() -> str:
    """This host's address as other nodes see it (its name resolved); refuses loopback, which no
    other node can reach, and asks for --zmq-host instead."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        raise UsageError(f"cannot resolve this host's name {name!r}; pass --zmq-host ADDRESS") from None
    if address.startswith("127."):
        raise UsageError(f"{name} resolves to {address}, which other nodes cannot reach; pass --zmq-host ADDRESS")
    return address


def _describe(config: RunConfig) -> str:
    load = config.load
    if load.fixed_schedule:
        mode = f"fixed schedule x{load.fixed_schedule_speedup:g}"
    elif load.request_rate is not None:
        mode = f"{load.request_rate_mode} {load.request_rate:g} req/s"
        mode += f" (cap {load.concurrency})" if load.concurrency else ""
    else:
        mode = f"concurrency {load.max_in_flight}"
    endpoint = config.endpoint
    return f"{endpoint.request_url} model={endpoint.model} {mode} workers={config.worker_count}"


async def _run(
    config: RunConfig,
    run_dir: Path,
    launcher: LocalLauncher,
    view: QuietView,
    metrics_server: MetricsServer | None,
) -> tuple[RunOutcome, ResultsReady | None]:
    from aiperf_hpc.core.live_stats import LiveStatus
    from aiperf_hpc.live.prometheus import render_prometheus
    from aiperf_hpc.services.controller import Controller
    from aiperf_hpc.services.server_metrics_scraper import resolve_server_metrics

    controller: Controller | None = None

    def live_status() -> LiveStatus:
        return controller.live_status() if controller is not None else LiveStatus(None, None, None, {})

    if metrics_server is not None:  # first: a port in use is a usage error, before any other check
        await metrics_server.start(lambda: render_prometheus(live_status()))
    socket_dir = Path(tempfile.mkdtemp(prefix="aiperf-hpc-"))
    bus: Bus | None = None
    try:
        if metrics_server is not None:
            view.note(f"live metrics at {metrics_server.url}")
        await check_reachable(config.endpoint.url)
        config, notes = await resolve_server_metrics(config)
        for note in notes:
            view.note(note)
        keys = None
        if config.cluster.launcher == "slurm":
            # Workers on other nodes read the key file from the (shared) artifact directory.
            keys = CurveKeys.generate()
            os.environ[KEY_FILE_ENV] = str(write_key_file(run_dir / ".keys", keys))
            addresses = tcp_bind_specs(config.cluster.zmq_host or "127.0.0.1")
        else:
            addresses = ipc_addresses(socket_dir)
        bus = Bus(keys)
        controller = Controller(
            config=config,
            run_dir=run_dir,
            addresses=addresses,
            bus=bus,
            launcher=launcher,
            view=view,
        )
        outcome = await controller.run()
        results = controller.results
        if results is None:
            return outcome, None
        for warning in results.warnings:
            view.note(f"warning: {warning}")
        return outcome, results
    finally:
        view.close(controller.live_status() if controller is not None else None)
        if metrics_server is not None:
            await metrics_server.stop()
        if bus is not None:
            bus.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(run_dir / ".keys", ignore_errors=True)
        os.environ.pop(KEY_FILE_ENV, None)


def _prepare_run_dir(run_dir: Path) -> None:
    """Create the artifact dir and remove a previous run's artifacts, so nothing stale is mixed in.
    Raises UsageError when the directory cannot be made or cleaned (a file in the way, no permission)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--artifact-dir {run_dir} is a file, not a directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in ARTIFACTS:
            path = run_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    except OSError as exc:
        raise UsageError(f"cannot use --artifact-dir {run_dir}: {exc.strerror or exc}") from None
