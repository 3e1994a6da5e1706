"""TimingManager: the only place that decides when a request is sent, and which one.

It binds the credits ROUTER, fetches the dataset's shape, learns the workers from their
`WorkerReady`, and on `StartProfiling` runs each phase of `core.phases.plan_phases`:

- when: closed loop (as soon as fewer than the cap are in flight), a rate (`core.schedule`: each
  credit carries its absolute due time and is sent `ISSUE_AHEAD_NS` early, so the worker holds it
  and sends at that time itself), or a fixed schedule (trace timestamps);
- what: `core.conversations.ConversationCursor` (the turn, and the worker holding its history);
- where: the ledger's worker with the most free slots (or the conversation's worker).

Then it drains the phase. Returns and losses settle credits in `core.ledger`; a lost worker's credits
become `lost` records pushed straight to the records manager, so every credit yields one record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import zmq

from aiperf_hpc.config import LoadConfig
from aiperf_hpc.core.conversations import ConversationCursor, NextTurn
from aiperf_hpc.core.ledger import CreditLedger, IssuedCredit
from aiperf_hpc.core.phases import PhasePlan, plan_phases
from aiperf_hpc.core.schedule import fixed_schedule_offsets_ns
from aiperf_hpc.errors import DeadlineExceeded, UsageError
from aiperf_hpc.protocol.messages import (
    CancelCredits,
    Configure,
    Conversation,
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
from aiperf_hpc.runtime.aio import Wakeup, bounded
from aiperf_hpc.runtime.bus import bound_endpoint, send, send_to
from aiperf_hpc.runtime.service import CONFIGURE_TIMEOUT_S, Service
from aiperf_hpc.services.dataset_client import fetch_conversations

log = logging.getLogger(__name__)

WORKERS_READY_TIMEOUT_S = 60.0
CANCEL_WAIT_S = 3.0  # after CancelCredits, how long returns may take before credits count as lost
DRAIN_MARGIN_S = 10.0  # on top of the request timeout, for a count-bounded phase to drain
# Scheduled credits leave this long before their due time and the worker sends each at its due time
# itself, so this loop's own wake-ups and the hop to the worker (a few ms under load) do not make a
# request late. Longer was worse at 1,000 req/s on 2 busy cores (50 ms: send lag p99 4.7 ms against
# 2.9 ms): the first 50 ms of credits leave at once and more of them wait in the worker. The cap
# counts a credit from when it leaves, so it may be reached up to this early.
ISSUE_AHEAD_NS = 10_000_000
_CANCEL_STREAM = 2  # rng stream of the request-cancellation draws (0, 1: the phases' arrivals)


class TimingManager(Service):
    service_type = "timing"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        config = message.config
        load = config.load
        self._ledger = CreditLedger()
        self._phases = plan_phases(load, dataset_pass=config.dataset_pass)
        self._seed = config.inputs.random_seed
        self._request_timeout_s = config.endpoint.request_timeout_s
        self._grace_period_s = load.grace_period_s
        self._cancel_rate = load.request_cancellation_rate / 100.0
        self._cancel_after_ns = int(load.request_cancellation_delay_s * 1e9)
        self._cancel_rng = np.random.default_rng([self._seed, _CANCEL_STREAM])
        self._expected_workers = set(message.worker_ids)
        self._stop_reason: str | None = None
        self._started = asyncio.Event()
        self._wake = Wakeup()  # set by every credit return, worker change and stop
        self._stopping = Wakeup()  # set by a stop only: what a wait for a due time must heed
        conversations = await fetch_conversations(self.bus, message.addresses.dataset, self.service_id)
        self._turn_delays_ns = [[int((turn.delay_ms or 0.0) * 1e6) for turn in c.turns] for c in conversations]
        self._dataset_pass = config.dataset_pass
        self._cursor = ConversationCursor(self._turn_delays_ns)
        self._trace = self._plan_trace(conversations, load) if load.fixed_schedule else []
        self._credits = self.bus.socket(zmq.ROUTER, bind=message.addresses.credits)
        self._records = self.bus.socket(zmq.PUSH, connect=message.addresses.records, linger_ms=5000)
        return {
            "phases": ",".join(p.name for p in self._phases),
            "trace_requests": len(self._trace),
            "endpoint": bound_endpoint(self._credits),
        }

    @staticmethod
    def _plan_trace(conversations: list[Conversation], load: LoadConfig) -> list[tuple[int, int, int]]:
        """Fixed schedule: (offset_ns, conversation, turn) for every turn with a timestamp, in time order."""
        turns = [(c.index, t, turn.timestamp_ms) for c in conversations for t, turn in enumerate(c.turns)]
        timed = [(c, t, ts) for c, t, ts in turns if ts is not None]
        if not timed:
            raise UsageError("--fixed-schedule needs timestamps in the input file; it has none")
        untimed = next(((c, t) for c, t, ts in turns if ts is None), None)
        if untimed is not None:
            conversation, turn_index = untimed
            raise UsageError(
                "--fixed-schedule needs a timestamp on every turn; "
                f"conversation {conversation} turn {turn_index} has none"
            )
        offsets = fixed_schedule_offsets_ns(
            [ts for _, _, ts in timed],
            start_offset_ms=load.fixed_schedule_start_offset_ms,
            end_offset_ms=load.fixed_schedule_end_offset_ms,
            speedup=load.fixed_schedule_speedup,
        )
        if not offsets:
            raise UsageError("no trace entry lies between the fixed-schedule start and end offsets")
        return [(offset, timed[i][0], timed[i][1]) for i, offset in offsets]

    async def on_control(self, message: Message) -> None:
        match message:
            case StartProfiling():
                self._started.set()
            case StopIssuing(reason=reason):
                log.info("stop issuing: %s", reason)
                self._stop_reason = reason
                self._wake.set()
                self._stopping.set()
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
            _, message = await self.bus.next_message(self._credits)
            match message:
                case CreditReturn(credit_id=credit_id):
                    credit = self._ledger.settle(credit_id)
                    if credit is None:
                        log.warning("ignored a return of unknown or settled credit %d", credit_id)
                    else:
                        self._cursor.finished(credit.conversation_index, credit.turn_index, time.perf_counter_ns())
                case WorkerReady(worker_id=worker_id, slots=slots):
                    self._ledger.add_worker(worker_id, slots)
                case _:
                    log.error("unexpected %s on the credits socket", type(message).__name__)
            self._wake.set()

    async def _issue_loop(self) -> None:
        await bounded(self._started.wait(), CONFIGURE_TIMEOUT_S, "StartProfiling from the controller")
        await self._wait_for(
            lambda: self._expected_workers <= set(self._ledger.workers),
            WORKERS_READY_TIMEOUT_S,
            "WorkerReady from every worker",
        )
        for phase in self._phases:
            # A fixed stream per phase: adding a warmup never changes the profiling arrivals of a seed.
            await self._issue_phase(phase, stream=0 if phase.name == "warmup" else 1)
            await self._drain_phase(phase)
            if self._stop_reason is not None:
                break
        reason = self._stop_reason or "all phases complete"
        await self.send_control(TimingDone(issued=dict(self._ledger.issued), reason=reason))
        # The run ends through the control loop (Shutdown, or the controller-silence limit).
        await asyncio.Event().wait()

    async def _issue_phase(self, phase: PhasePlan, stream: int) -> None:
        start_perf_ns = time.perf_counter_ns()
        start_wall_ns = time.time_ns()
        schedule = phase.arrival_schedule(self._seed, stream)
        # Each phase walks the conversations afresh; a one-pass profiling phase ends with the dataset.
        self._cursor = ConversationCursor(
            self._turn_delays_ns, cycle=not (self._dataset_pass and phase.name == "profiling")
        )
        issued = 0
        while self._stop_reason is None:
            if (phase.fixed_schedule and issued >= len(self._trace)) or self._cursor.exhausted:
                return
            due_ns = None
            if schedule is not None:
                due_ns = schedule.offset_ns(issued)
            elif phase.fixed_schedule:
                due_ns = self._trace[issued][0]
            elapsed_ns = time.perf_counter_ns() - start_perf_ns
            if phase.finished_issuing(issued=issued, elapsed_ns=elapsed_ns, next_due_ns=due_ns):
                return
            if due_ns is not None and not await self._sleep_until(start_perf_ns + due_ns - ISSUE_AHEAD_NS):
                continue  # woken by a stop: re-check
            fixed = self._trace[issued][1:] if phase.fixed_schedule else None
            choice = await self._wait_for_room(phase, start_perf_ns, fixed, closed_loop=due_ns is None)
            if choice is None:
                continue
            turn, worker_id = choice
            scheduled_wall_ns = None if due_ns is None else start_wall_ns + due_ns
            await self._issue(phase, turn, worker_id, scheduled_wall_ns)
            issued += 1

    async def _wait_for_room(
        self, phase: PhasePlan, start_perf_ns: int, fixed: tuple[int, int] | None, *, closed_loop: bool
    ) -> tuple[NextTurn, str] | None:
        """Wait until the cap allows one more credit, a turn is ready and a worker has room for it.
        None when the phase ended meanwhile (stop, or a closed-loop duration ran out)."""
        idle_limit_s = self._request_timeout_s + DRAIN_MARGIN_S
        while self._stop_reason is None and not self._cursor.exhausted:
            self._wake.clear()
            now_ns = time.perf_counter_ns()
            elapsed_ns = now_ns - start_perf_ns
            if closed_loop and phase.finished_issuing(issued=0, elapsed_ns=elapsed_ns, next_due_ns=None):
                return None
            if not self._ledger.workers:
                raise DeadlineExceeded("every worker is lost; nothing can send requests")
            cap = phase.cap(elapsed_ns)
            turn = None
            if cap is None or self._ledger.outstanding_in(phase.name) < cap:
                turn = self._cursor.take(*fixed) if fixed is not None else self._cursor.next_ready(now_ns)
            if turn is not None:
                worker_id = turn.worker_id or self._ledger.pick_worker()
                if worker_id is not None and self._ledger.has_room(worker_id):
                    return turn, worker_id
            wait_s = idle_limit_s
            next_ready_ns = self._cursor.next_ready_ns()
            if next_ready_ns is not None and next_ready_ns > now_ns:  # a turn's delay ends: look again then
                wait_s = min(wait_s, (next_ready_ns - now_ns) / 1e9)
            if closed_loop and phase.duration_ns is not None:
                wait_s = min(wait_s, max(0.0, (phase.duration_ns - elapsed_ns) / 1e9))
            if not await self._wake.wait(wait_s) and wait_s >= idle_limit_s:
                raise DeadlineExceeded(
                    f"no credit returned for {idle_limit_s:g} s in the {phase.name} phase "
                    f"({self._ledger.outstanding_in(phase.name)} outstanding)"
                )
        return None

    async def _issue(self, phase: PhasePlan, turn: NextTurn, worker_id: str, scheduled_wall_ns: int | None) -> None:
        credit = self._ledger.issue(phase.name, worker_id, turn.conversation_index, turn.turn_index)
        self._cursor.started(turn, worker_id)
        cancel = self._cancel_rate > 0 and float(self._cancel_rng.random()) < self._cancel_rate
        drop = CreditDrop(
            credit_id=credit.credit_id,
            phase=credit.phase,
            conversation_index=credit.conversation_index,
            turn_index=credit.turn_index,
            scheduled_wall_ns=scheduled_wall_ns,
            cancel_after_ns=self._cancel_after_ns if cancel else None,
        )
        if not await send_to(self._credits, worker_id.encode(), drop):
            await self._lose(self._ledger.remove_worker(worker_id), f"worker {worker_id} unreachable")

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
            await self._wait_for(lambda: self._ledger.outstanding_in(phase.name) == 0, timeout_s, "")
        except DeadlineExceeded:
            return False
        return True

    async def _sleep_until(self, deadline_perf_ns: int) -> bool:
        """Sleep until the deadline; False when a stop woke us first. Credit returns do not wake it:
        at high rates they would, a thousand times a second, for nothing."""
        while self._stop_reason is None:
            remaining_s = (deadline_perf_ns - time.perf_counter_ns()) / 1e9
            if remaining_s <= 0:
                return True
            await self._stopping.wait(remaining_s)
        return False

    async def _wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self._wake.clear()
            if condition():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DeadlineExceeded(f"timed out after {timeout_s:g} s waiting for {what}")
            await self._wake.wait(remaining)

    async def _lose(self, credits: list[IssuedCredit], reason: str) -> None:
        if not credits:
            return
        log.warning("%d credits lost: %s", len(credits), reason)
        now_wall_ns = time.time_ns()
        for credit in credits:
            self._cursor.abandon(credit.conversation_index)
        records = [
            RequestRecord(
                credit_id=c.credit_id,
                phase=c.phase,
                worker_id=c.worker_id,
                node="",
                conversation_index=c.conversation_index,
                turn_index=c.turn_index,
                started_wall_ns=now_wall_ns,
                error_type="lost",
                error_message=reason,
            )
            for c in credits
        ]
        await send(self._records, RecordBatch(records=records))
