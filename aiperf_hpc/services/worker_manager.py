"""WorkerManager: starts the workers, watches them, and reports the ones that are lost.

A worker is lost when its process exits before shutdown, or when it misses heartbeats
(`WorkerHealth`) for `HEARTBEAT_LOSS_S`; a silent worker is killed so it cannot come back with
stale credits. Each loss is reported once as `WorkerLost`; the timing manager's ledger then turns
that worker's in-flight credits into `lost` records.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import zmq

from aiperf_hpc.errors import DeadlineExceeded
from aiperf_hpc.launch.local import LocalLauncher
from aiperf_hpc.protocol.messages import Configure, WorkerHealth, WorkerLost, WorkerStatus
from aiperf_hpc.runtime.service import Service

log = logging.getLogger(__name__)

HEARTBEAT_LOSS_S = 10.0
STATUS_INTERVAL_S = 1.0
WORKER_STOP_TIMEOUT_S = 5.0


class WorkerManager(Service):
    service_type = "worker_manager"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        self._health = self.bus.socket(zmq.ROUTER, bind=message.addresses.health)
        self._launcher = LocalLauncher(Path(message.run_dir) / "logs")
        self._last_seen_s: dict[str, float] = {}
        self._latest: dict[str, WorkerHealth] = {}
        self._lost: set[str] = set()
        now_s = time.monotonic()
        for worker_id in message.worker_ids:
            self._launcher.start("worker", worker_id, message.addresses.control)
            self._last_seen_s[worker_id] = now_s
        return {"workers": len(message.worker_ids)}

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
                self._last_seen_s[message.worker_id] = time.monotonic()
                self._latest[message.worker_id] = message

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S / 4)
            for worker_id, code in self._launcher.newly_exited():
                tail = self._launcher.log_tail(worker_id, 3).replace("\n", " | ")
                await self._report_lost(worker_id, f"process exited with code {code}: {tail}")
            now_s = time.monotonic()
            for worker_id, seen_s in self._last_seen_s.items():
                if now_s - seen_s > HEARTBEAT_LOSS_S and worker_id not in self._lost:
                    self._launcher.kill(worker_id)
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
                alive=len(self._last_seen_s) - len(self._lost),
                in_flight=sum(h.in_flight for h in alive),
                max_loop_lag_ms=max((h.loop_lag_ms for h in alive), default=0.0),
            )
        )
