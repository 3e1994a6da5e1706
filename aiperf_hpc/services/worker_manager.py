"""WorkerManager: starts the workers, watches them, and reports the ones that are lost.

Locally every worker is a child process (forked by the fork server when this process was); under
Slurm every worker is a task of one `srun` step (`launch.slurm`). A worker is lost when its
process exits before shutdown, when the whole step exits, or when it misses heartbeats
(`WorkerHealth`) for `HEARTBEAT_LOSS_S` after its first one; a silent local worker is killed so it
cannot come back with stale credits. Each loss is reported once as `WorkerLost`; the timing
manager's ledger then turns that worker's in-flight credits into `lost` records. A worker that
never sends a first heartbeat is lost once the start timeout has passed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import zmq

from aiperf_hpc.artifacts import LOGS_DIR
from aiperf_hpc.core.liveness import HEARTBEAT_LOSS_S, first_seen_ns, heartbeat_lost
from aiperf_hpc.core.placement import decide_placement
from aiperf_hpc.errors import DeadlineExceeded
from aiperf_hpc.launch.fork_server import ForkServer
from aiperf_hpc.launch.launcher import Launcher
from aiperf_hpc.launch.local import LocalLauncher
from aiperf_hpc.launch.slurm import SlurmLauncher
from aiperf_hpc.protocol.messages import Configure, WorkerHealth, WorkerLost, WorkerStatus
from aiperf_hpc.runtime.bus import bound_endpoint
from aiperf_hpc.runtime.service import Service

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 1.0
WORKER_STOP_TIMEOUT_S = 5.0


def _launcher(message: Configure) -> Launcher:
    """The workers' launcher: the Slurm one when the controller placed them on the allocation's
    nodes, else the local one; either keeps its own processes (the srun step) in the run's logs."""
    local = LocalLauncher(Path(message.run_dir) / LOGS_DIR, ForkServer.inherited())
    cluster = message.config.cluster
    if cluster.launcher != "slurm":
        return local
    placement = decide_placement(cluster, os.environ)
    return SlurmLauncher(local, placement, python=sys.executable, overlap=cluster.srun_overlap)


class WorkerManager(Service):
    service_type = "worker_manager"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        self._health = self.bus.socket(zmq.ROUTER, bind=message.addresses.health)
        self._launcher = _launcher(message)
        self._worker_ids = list(message.worker_ids)
        self._latest: dict[str, WorkerHealth] = {}
        self._lost: set[str] = set()
        # A worker has until the start timeout for its first heartbeat, then HEARTBEAT_LOSS_S between them.
        first_ns = first_seen_ns(self.clock.perf_ns(), message.config.service_start_timeout_s)
        self._last_seen_ns = dict.fromkeys(self._worker_ids, first_ns)
        self._launcher.start_workers(self._worker_ids, message.addresses.control)
        return {"workers": len(message.worker_ids), "endpoint": bound_endpoint(self._health)}

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        return [self._health_loop(), self._watch_loop()]

    async def close(self) -> None:
        if hasattr(self, "_launcher"):
            forced = await self._launcher.stop_all(WORKER_STOP_TIMEOUT_S)
            for what in forced:
                log.warning("worker shutdown: %s", what)

    async def _health_loop(self) -> None:
        while True:
            try:
                _, message = await self.bus.recv_routed(self._health, timeout_s=STATUS_INTERVAL_S, what="worker health")
            except DeadlineExceeded:
                continue
            if isinstance(message, WorkerHealth):
                self._last_seen_ns[message.worker_id] = self.clock.perf_ns()
                self._latest[message.worker_id] = message

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S / 4)
            for process_id, code in self._launcher.newly_exited():
                tail = self._launcher.log_tail(process_id, 3).replace("\n", " | ")
                for worker_id in self._launcher.lost_workers(process_id):
                    await self._report_lost(worker_id, f"{process_id} exited with code {code}: {tail}")
            now_ns = self.clock.perf_ns()
            for worker_id, seen_ns in self._last_seen_ns.items():
                if heartbeat_lost(seen_ns, now_ns) and worker_id not in self._lost:
                    self._launcher.kill_worker(worker_id)
                    await self._report_lost(worker_id, f"no heartbeat for {HEARTBEAT_LOSS_S:g} s")
            await self._report_status()

    async def _report_lost(self, worker_id: str, reason: str) -> None:
        if worker_id in self._lost:
            return
        self._lost.add(worker_id)
        log.error("worker %s lost: %s", worker_id, reason)
        await self.send_control(WorkerLost(worker_id=worker_id, reason=reason))

    async def _report_status(self) -> None:
        alive = [h for w, h in self._latest.items() if w not in self._lost]
        await self.send_control(
            WorkerStatus(
                alive=len(self._worker_ids) - len(self._lost),
                in_flight=sum(h.in_flight for h in alive),
                max_loop_lag_ms=max((h.loop_lag_ms for h in alive), default=0.0),
                completed=sum(h.completed for h in alive),
            )
        )
