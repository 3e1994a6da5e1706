"""TimingManager: the only place that decides when a request is sent, and which one.

It binds the credits ROUTER, fetches the dataset's shape, learns the workers from their
`WorkerReady`, and on `StartProfiling` runs each phase of `core.phases.plan_phases`. What to issue,
when, to which worker, and how a phase drains is `core.issuer.CreditIssuer`'s decision:

- when: closed loop (as soon as fewer than the cap are in flight), a rate (`core.schedule`: each
  credit carries its absolute due time and is sent `ISSUE_AHEAD_NS` early, so the worker holds it
  and sends at that time itself), or a fixed schedule (trace timestamps);
- what: `core.conversations.ConversationCursor` (the turn, and the worker holding its history);
- where: the ledger's worker with the most free slots (or the conversation's worker).

This shell receives messages, tells the issuer, and does what `next_action` returns: send a
`CreditDrop` or `CancelCredits`, push `lost` records, or wait (woken by credit returns, worker
changes and stops, or by stops only while sleeping until a due time). Returns and losses settle
credits in `core.ledger`; a lost worker's credits become `lost` records pushed straight to the
records manager, so every credit yields one record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import zmq

from aiperf_hpc.config import LoadConfig
from aiperf_hpc.core.issue_actions import Cancel, Issue, Lose, PhaseDone, Wait
from aiperf_hpc.core.issuer import CANCEL_WAIT_S, DRAIN_MARGIN_S, ISSUE_AHEAD_NS, CreditIssuer, IssuerPolicy
from aiperf_hpc.core.ledger import IssuedCredit
from aiperf_hpc.core.phases import plan_phases
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

__all__ = ["CANCEL_WAIT_S", "DRAIN_MARGIN_S", "ISSUE_AHEAD_NS", "WORKERS_READY_TIMEOUT_S", "TimingManager"]

log = logging.getLogger(__name__)

WORKERS_READY_TIMEOUT_S = 60.0


class TimingManager(Service):
    service_type = "timing"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        config = message.config
        load = config.load
        phases = plan_phases(load, dataset_pass=config.dataset_pass)
        policy = IssuerPolicy(
            seed=config.inputs.random_seed,
            request_timeout_s=config.endpoint.request_timeout_s,
            grace_period_s=load.grace_period_s,
            cancel_rate=load.request_cancellation_rate / 100.0,
            cancel_after_ns=int(load.request_cancellation_delay_s * 1e9),
            dataset_pass=config.dataset_pass,
        )
        self._expected_workers = set(message.worker_ids)
        self._started = asyncio.Event()
        self._wake = Wakeup()  # set by every credit return, worker change and stop
        self._stopping = Wakeup()  # set by a stop only: what a wait for a due time must heed
        conversations = await fetch_conversations(self.bus, message.addresses.dataset, self.service_id)
        turn_delays_ns = [[int((turn.delay_ms or 0.0) * 1e6) for turn in c.turns] for c in conversations]
        trace = self._plan_trace(conversations, load) if load.fixed_schedule else []
        self._issuer = CreditIssuer(phases, turn_delays_ns, policy, trace=trace)
        self._credits = self.bus.socket(zmq.ROUTER, bind=message.addresses.credits)
        self._records = self.bus.socket(zmq.PUSH, connect=message.addresses.records, linger_ms=5000)
        return {
            "phases": ",".join(p.name for p in phases),
            "trace_requests": len(trace),
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
                self._issuer.stop(reason)
                self._wake.set()
                self._stopping.set()
            case WorkerLost(worker_id=worker_id, reason=reason):
                await self._lose(self._issuer.lose_worker(worker_id), f"worker {worker_id} lost: {reason}")
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
                    if self._issuer.returned(credit_id, self.clock.perf_ns()) is None:
                        log.warning("ignored a return of unknown or settled credit %d", credit_id)
                case WorkerReady(worker_id=worker_id, slots=slots):
                    self._issuer.add_worker(worker_id, slots)
                case _:
                    log.error("unexpected %s on the credits socket", type(message).__name__)
            self._wake.set()

    async def _issue_loop(self) -> None:
        issuer = self._issuer
        await bounded(self._started.wait(), CONFIGURE_TIMEOUT_S, "StartProfiling from the controller")
        await self._wait_for(
            lambda: self._expected_workers <= set(issuer.ledger.workers),
            WORKERS_READY_TIMEOUT_S,
            "WorkerReady from every worker",
        )
        while issuer.begin_next_phase(self.clock.perf_ns(), self.clock.wall_ns()) is not None:
            await self._run_phase()
        reason = issuer.stop_reason or "all phases complete"
        await self.send_control(TimingDone(issued=dict(issuer.ledger.issued), reason=reason))
        # The run ends through the control loop (Shutdown, or the controller-silence limit).
        await asyncio.Event().wait()

    async def _run_phase(self) -> None:
        """Issue and drain the current phase: do what the issuer says until it says the phase is done.
        Raises `DeadlineExceeded` when every worker is lost or no credit returned for the idle limit."""
        issuer, clock, wake = self._issuer, self.clock, self._wake
        while True:
            wake.clear()  # before the issuer looks: a return from here on ends the next wait
            action = issuer.next_action(clock.perf_ns())
            match action:
                case Issue():
                    await self._send_credit(action)
                case Wait(timeout_s=timeout_s, returns_wake=True, idle=idle):
                    if not await wake.wait(timeout_s) and idle:
                        raise DeadlineExceeded(issuer.idle_error())
                case Wait(timeout_s=timeout_s):
                    # Credit returns do not end a sleep until a due time: at high rates they would, a
                    # thousand times a second, for nothing.
                    await self._stopping.wait(timeout_s)
                case Cancel(worker_ids=worker_ids, outstanding=outstanding):
                    log.info("%s: cancelling %d requests in flight", issuer.phase.name, outstanding)
                    for worker_id in worker_ids:
                        await send_to(self._credits, worker_id.encode(), CancelCredits())
                case Lose(credits=credits, reason=reason):
                    await self._lose(credits, reason)
                case PhaseDone():
                    return

    async def _send_credit(self, issue: Issue) -> None:
        credit = issue.credit
        drop = CreditDrop(
            credit_id=credit.credit_id,
            phase=credit.phase,
            conversation_index=credit.conversation_index,
            turn_index=credit.turn_index,
            scheduled_wall_ns=issue.scheduled_wall_ns,
            cancel_after_ns=issue.cancel_after_ns,
        )
        worker_id = credit.worker_id
        if not await send_to(self._credits, worker_id.encode(), drop):
            await self._lose(self._issuer.lose_worker(worker_id), f"worker {worker_id} unreachable")

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
        now_wall_ns = self.clock.wall_ns()
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
