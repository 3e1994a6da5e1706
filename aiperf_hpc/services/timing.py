"""TimingManager: the only place that decides when a request is sent.

It binds the credits ROUTER, learns the workers from their `WorkerReady`, and on `StartProfiling`
runs each phase of `core.phases.plan_phases`: issue a `CreditDrop` whenever the phase allows one and
a worker has a free slot, then drain. Returns and losses settle credits in `core.ledger`; a lost
worker's credits become `lost` records pushed straight to the records manager, so every credit
yields exactly one record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

import zmq

from aiperf_hpc.core.ledger import CreditLedger, IssuedCredit
from aiperf_hpc.core.phases import PhasePlan, plan_phases
from aiperf_hpc.errors import DeadlineExceeded
from aiperf_hpc.protocol.messages import (
    CancelCredits,
    Configure,
    CreditDrop,
    CreditReturn,
    Message,
    RecordBatch,
    RequestRecord,
    StartProfiling,
    StopIssuing,
    TimingDone,
    WorkerLost,
    WorkerReady,
)
from aiperf_hpc.runtime.aio import bounded
from aiperf_hpc.runtime.bus import send, send_to
from aiperf_hpc.runtime.service import CONFIGURE_TIMEOUT_S, Service

log = logging.getLogger(__name__)

WORKERS_READY_TIMEOUT_S = 60.0
CANCEL_WAIT_S = 3.0  # after CancelCredits, how long returns may take before credits count as lost
DRAIN_MARGIN_S = 10.0  # on top of the request timeout, for a count-bounded phase to drain
_IDLE_POLL_S = 1.0


class TimingManager(Service):
    service_type = "timing"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        config = message.config
        self._ledger = CreditLedger()
        self._phases = plan_phases(config.load)
        self._num_entries = config.inputs.num_entries
        self._request_timeout_s = config.endpoint.request_timeout_s
        self._grace_period_s = config.load.grace_period_s
        self._expected_workers = set(message.worker_ids)
        self._next_entry = 0
        self._stop_reason: str | None = None
        self._started = asyncio.Event()
        self._wake = asyncio.Event()
        self._credits = self.bus.socket(zmq.ROUTER, bind=message.addresses.credits)
        self._records = self.bus.socket(zmq.PUSH, connect=message.addresses.records, linger_ms=5000)
        return {"phases": ",".join(p.name for p in self._phases)}

    async def on_control(self, message: Message) -> None:
        match message:
            case StartProfiling():
                self._started.set()
            case StopIssuing(reason=reason):
                log.info("stop issuing: %s", reason)
                self._stop_reason = reason
                self._wake.set()
            case WorkerLost(worker_id=worker_id, reason=reason):
                await self._lose(self._ledger.remove_worker(worker_id), f"worker {worker_id} lost: {reason}")
                self._expected_workers.discard(worker_id)
                self._wake.set()
            case _:
                await super().on_control(message)

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        return [self._credits_loop(), self._issue_loop()]

    async def _credits_loop(self) -> None:
        while True:
            try:
                _, message = await self.bus.recv_routed(self._credits, timeout_s=_IDLE_POLL_S, what="credits")
            except DeadlineExceeded:
                continue
            match message:
                case CreditReturn(credit_id=credit_id):
                    if self._ledger.settle(credit_id) is None:
                        log.warning("ignored a return of unknown or settled credit %d", credit_id)
                case WorkerReady(worker_id=worker_id, slots=slots):
                    self._ledger.add_worker(worker_id, slots)
                case _:
                    log.error("unexpected %s on the credits socket", type(message).__name__)
            self._wake.set()

    async def _issue_loop(self) -> None:
        await bounded(self._started.wait(), CONFIGURE_TIMEOUT_S, "StartProfiling from the controller")
        await self._wait_until(
            lambda: self._expected_workers <= set(self._ledger.workers),
            WORKERS_READY_TIMEOUT_S,
            "WorkerReady from every worker",
        )
        for phase in self._phases:
            await self._issue_phase(phase)
            await self._drain_phase(phase)
            if self._stop_reason is not None:
                break
        reason = self._stop_reason or "all phases complete"
        await self.send_control(TimingDone(issued=dict(self._ledger.issued), reason=reason))
        # The run ends through the control loop (Shutdown, or the controller-silence limit).
        await asyncio.Event().wait()

    async def _issue_phase(self, phase: PhasePlan) -> None:
        started_ns = time.perf_counter_ns()
        issued = 0
        idle_limit_s = self._request_timeout_s + DRAIN_MARGIN_S
        deadline_ns = phase.issue_deadline_ns(started_ns)
        while self._stop_reason is None:
            self._wake.clear()
            now_ns = time.perf_counter_ns()
            if phase.finished_issuing(issued=issued, started_ns=started_ns, now_ns=now_ns):
                return
            worker_id = None
            outstanding = self._ledger.outstanding_in(phase.name)
            if phase.may_issue(issued=issued, outstanding=outstanding, started_ns=started_ns, now_ns=now_ns):
                worker_id = self._ledger.pick_worker()
            if worker_id is None:
                if not self._ledger.workers:
                    raise DeadlineExceeded("every worker is lost; nothing can send requests")
                wait_s = idle_limit_s if deadline_ns is None else max(0.0, (deadline_ns - now_ns) / 1e9)
                await self._wait_wake(min(wait_s, idle_limit_s), phase, idle_limit_s)
                continue
            await self._issue(phase, worker_id)
            issued += 1

    async def _issue(self, phase: PhasePlan, worker_id: str) -> None:
        credit = self._ledger.issue(phase.name, worker_id, self._next_entry % self._num_entries)
        self._next_entry += 1
        drop = CreditDrop(credit_id=credit.credit_id, phase=credit.phase, entry_index=credit.entry_index)
        if not await send_to(self._credits, worker_id.encode(), drop):
            await self._lose(self._ledger.remove_worker(worker_id), f"worker {worker_id} unreachable")

    async def _wait_wake(self, timeout_s: float, phase: PhasePlan, idle_limit_s: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout_s)
        except asyncio.TimeoutError:
            if timeout_s >= idle_limit_s:
                raise DeadlineExceeded(
                    f"no credit returned for {idle_limit_s:g} s in the {phase.name} phase "
                    f"({self._ledger.outstanding_in(phase.name)} outstanding)"
                ) from None

    async def _drain_phase(self, phase: PhasePlan) -> None:
        """Wait for the phase's outstanding credits; past the deadline cancel them, then call them lost."""
        if self._stop_reason is not None:
            drain_s = 0.0
        elif phase.duration_ns is not None:
            drain_s = self._grace_period_s
        else:
            drain_s = self._request_timeout_s + DRAIN_MARGIN_S
        if await self._settled_within(phase, drain_s):
            return
        log.info("%s: cancelling %d requests in flight", phase.name, self._ledger.outstanding_in(phase.name))
        for worker_id in self._ledger.workers:
            if self._ledger.held_by(worker_id):
                await send_to(self._credits, worker_id.encode(), CancelCredits())
        if await self._settled_within(phase, CANCEL_WAIT_S):
            return
        for worker_id in self._ledger.workers:
            held = [c for c in self._ledger.held_by(worker_id) if c.phase == phase.name]
            for credit in held:
                self._ledger.settle(credit.credit_id)
            await self._lose(held, "no return within the cancel deadline")

    async def _settled_within(self, phase: PhasePlan, timeout_s: float) -> bool:
        try:
            await self._wait_until(lambda: self._ledger.outstanding_in(phase.name) == 0, timeout_s, "")
        except DeadlineExceeded:
            return False
        return True

    async def _wait_until(self, condition: Any, timeout_s: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self._wake.clear()
            if condition():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DeadlineExceeded(f"timed out after {timeout_s:g} s waiting for {what}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)

    async def _lose(self, credits: list[IssuedCredit], reason: str) -> None:
        if not credits:
            return
        log.warning("%d credits lost: %s", len(credits), reason)
        now_wall_ns = time.time_ns()
        records = [
            RequestRecord(
                credit_id=c.credit_id,
                phase=c.phase,
                worker_id=c.worker_id,
                node="",
                entry_index=c.entry_index,
                started_wall_ns=now_wall_ns,
                error_type="lost",
                error_message=reason,
            )
            for c in credits
        ]
        await send(self._records, RecordBatch(records=records))
