"""Credit issuing and draining: the timing manager's policy for every phase of a run, without I/O.

Pure and synchronous. The timing shell asks `next_action(now_ns)` (perf clock, `Clock.perf_ns`)
and does what comes back, then asks again:

- `Issue`: send this credit (already in the ledger) to its worker;
- `Wait`: wait at most `timeout_s`; a credit return, a worker change or a stop ends it early when
  `returns_wake`, otherwise only a stop does (the sleep until a due time). An `idle` wait that ends
  by its timeout fails the phase with `idle_error()`;
- `Cancel`: the drain deadline passed: send `CancelCredits` to these workers;
- `Lose`: the cancel wait passed too: these credits (settled here) become `lost` records;
- `PHASE_DONE`: the phase issued and drained; `begin_next_phase` starts the next one, if any.

A phase issues until its count, its duration (a closed loop stops at the duration, a scheduled
credit due after it is not sent), the trace or the dataset ends, or a stop. It then drains: it
waits for its outstanding credits until the grace period (duration-bounded phases), the request
timeout plus `DRAIN_MARGIN_S` (count-bounded ones) or at once (after a stop); then cancels them and
waits `CANCEL_WAIT_S`; then calls the rest lost. `next_action` raises `DeadlineExceeded` when every
worker is lost while credits remain to be issued.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from aiperf_hpc.core.conversations import ConversationCursor, NextTurn
from aiperf_hpc.core.issue_actions import PHASE_DONE, Cancel, Issue, IssuerAction, Lose, Wait
from aiperf_hpc.core.ledger import CreditLedger, IssuedCredit
from aiperf_hpc.core.phases import PhasePlan
from aiperf_hpc.core.schedule import ArrivalSchedule
from aiperf_hpc.errors import DeadlineExceeded

__all__ = ["CANCEL_WAIT_S", "DRAIN_MARGIN_S", "ISSUE_AHEAD_NS", "CreditIssuer", "IssuerPolicy"]

CANCEL_WAIT_S = 3.0  # after CancelCredits, how long returns may take before credits count as lost
DRAIN_MARGIN_S = 10.0  # on top of the request timeout, for a count-bounded phase to drain
# Scheduled credits leave this long before their due time and the worker sends each at its due time
# itself, so the shell's own wake-ups and the hop to the worker (a few ms under load) do not make a
# request late. Longer was worse at 1,000 req/s on 2 busy cores (50 ms: send lag p99 4.7 ms against
# 2.9 ms): the first 50 ms of credits leave at once and more of them wait in the worker. The cap
# counts a credit from when it leaves, so it may be reached up to this early.
ISSUE_AHEAD_NS = 10_000_000
CANCEL_STREAM = 2  # rng stream of the request-cancellation draws (0, 1: the phases' arrivals)
LOST_AT_CANCEL_DEADLINE = "no return within the cancel deadline"


@dataclass(frozen=True, slots=True)
class IssuerPolicy:
    """The run's numbers the issuer needs (seconds, as in `RunConfig`)."""

    seed: int
    request_timeout_s: float
    grace_period_s: float
    cancel_rate: float = 0.0  # fraction of credits sent with `cancel_after_ns`, 0 to 1
    cancel_after_ns: int = 0
    dataset_pass: bool = False  # a one-pass profiling phase ends with the dataset


class _Stage(enum.Enum):
    ISSUING = enum.auto()
    DRAINING = enum.auto()
    CANCELLING = enum.auto()
    LOSING = enum.auto()
    DONE = enum.auto()


class CreditIssuer:
    """What to issue next, when, and how each phase drains. Owns the ledger and the cursor.

    Every method is synchronous and takes the time it needs as `now_ns` (perf clock) or, for a
    phase start, also `now_wall_ns` (wall clock, to stamp scheduled due times)."""

    def __init__(
        self,
        phases: list[PhasePlan],
        turn_delays_ns: list[list[int]],
        policy: IssuerPolicy,
        *,
        trace: list[tuple[int, int, int]] | None = None,
        ledger: CreditLedger | None = None,
    ) -> None:
        """`trace`: the fixed schedule's (offset_ns, conversation, turn), in time order."""
        self._phases = phases
        self._turn_delays_ns = turn_delays_ns
        self._policy = policy
        self._trace = trace or []
        self.ledger = ledger if ledger is not None else CreditLedger()
        self._cursor = ConversationCursor(turn_delays_ns)
        self._cancel_rng = np.random.default_rng([policy.seed, CANCEL_STREAM])
        self._idle_limit_s = policy.request_timeout_s + DRAIN_MARGIN_S
        self.stop_reason: str | None = None
        self._next_phase = 0
        self._phase = phases[0]
        self._stage = _Stage.DONE
        self._start_ns = 0
        self._start_wall_ns = 0
        self._schedule: ArrivalSchedule | None = None
        self._issued = 0
        self._deadline_ns: int | None = None
        self._losing: list[str] = []

    # --- events ---------------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stop issuing: the phase drains at once and no later phase starts."""
        self.stop_reason = reason

    def add_worker(self, worker_id: str, slots: int) -> None:
        self.ledger.add_worker(worker_id, slots)

    def returned(self, credit_id: int, now_ns: int) -> IssuedCredit | None:
        """A credit came back at `now_ns`: settle it and ready its conversation's next turn.
        None when the id is unknown or already settled."""
        credit = self.ledger.settle(credit_id)
        if credit is not None:
            self._cursor.finished(credit.conversation_index, credit.turn_index, now_ns)
        return credit

    def lose_worker(self, worker_id: str) -> list[IssuedCredit]:
        """The worker is lost or unreachable: its credits are settled as lost (and returned, for their
        `lost` records) and their conversations abandoned."""
        return self._abandon(self.ledger.remove_worker(worker_id))

    # --- phases ---------------------------------------------------------------------------------

    @property
    def phase(self) -> PhasePlan:
        """The phase begun last (the first one before any began)."""
        return self._phase

    def begin_next_phase(self, now_ns: int, now_wall_ns: int) -> PhasePlan | None:
        """Start the next phase at this instant; None when every phase ran or a stop ended the run
        (the first phase always starts, and then drains at once if a stop came first)."""
        if self._next_phase >= len(self._phases) or (self._next_phase > 0 and self.stop_reason is not None):
            return None
        phase = self._phase = self._phases[self._next_phase]
        self._next_phase += 1
        self._stage = _Stage.ISSUING
        self._start_ns, self._start_wall_ns = now_ns, now_wall_ns
        # A fixed stream per phase: adding a warmup never changes the profiling arrivals of a seed.
        self._schedule = phase.arrival_schedule(self._policy.seed, 0 if phase.name == "warmup" else 1)
        # Each phase walks the conversations afresh; a one-pass profiling phase ends with the dataset.
        one_pass = self._policy.dataset_pass and phase.name == "profiling"
        self._cursor = ConversationCursor(self._turn_delays_ns, cycle=not one_pass)
        self._issued = 0
        self._deadline_ns = None
        return phase

    def next_action(self, now_ns: int) -> IssuerAction:
        """What the shell does next for the current phase (see the module docstring)."""
        if self._stage is _Stage.ISSUING:
            action = self._issuing(now_ns)
            if action is not None:
                return action
            self._stage = _Stage.DRAINING
            self._deadline_ns = now_ns + round(self._drain_s() * 1e9)
        if self._stage is _Stage.DRAINING:
            if self._settled():
                return PHASE_DONE
            if (wait := self._until_deadline(now_ns)) is not None:
                return wait
            self._stage = _Stage.CANCELLING
            self._deadline_ns = None  # the cancel wait starts once the cancels are sent
            holders = [w for w in self.ledger.workers if self.ledger.held_by(w)]
            return Cancel(holders, self.ledger.outstanding_in(self._phase.name))
        if self._stage is _Stage.CANCELLING:
            if self._deadline_ns is None:
                self._deadline_ns = now_ns + round(CANCEL_WAIT_S * 1e9)
            if self._settled():
                return PHASE_DONE
            if (wait := self._until_deadline(now_ns)) is not None:
                return wait
            self._stage = _Stage.LOSING
            self._losing = self.ledger.workers
        if self._stage is _Stage.LOSING:
            while self._losing:
                worker_id = self._losing.pop(0)
                held = [c for c in self.ledger.held_by(worker_id) if c.phase == self._phase.name]
                if held:
                    for credit in held:
                        self.ledger.settle(credit.credit_id)
                    return Lose(self._abandon(held), LOST_AT_CANCEL_DEADLINE)
            self._stage = _Stage.DONE
        return PHASE_DONE

    def idle_error(self) -> str:
        """Why the phase failed when an `idle` wait ran out: no credit came back for that long."""
        outstanding = self.ledger.outstanding_in(self._phase.name)
        return (
            f"no credit returned for {self._idle_limit_s:g} s in the {self._phase.name} phase "
            f"({outstanding} outstanding)"
        )

    # --- the ladder -----------------------------------------------------------------------------

    def _issuing(self, now_ns: int) -> Issue | Wait | None:
        """The next credit of the phase, a wait for one, or None when the phase issued its last."""
        phase, cursor, issued = self._phase, self._cursor, self._issued
        fixed_schedule = phase.fixed_schedule
        if self.stop_reason is not None or cursor.exhausted or (fixed_schedule and issued >= len(self._trace)):
            return None
        due_ns = None
        if self._schedule is not None:
            due_ns = self._schedule.offset_ns(issued)
        elif fixed_schedule:
            due_ns = self._trace[issued][0]
        elapsed_ns = now_ns - self._start_ns
        if phase.finished_issuing(issued=issued, elapsed_ns=elapsed_ns, next_due_ns=due_ns):
            return None
        if due_ns is not None:
            early_ns = self._start_ns + due_ns - ISSUE_AHEAD_NS - now_ns
            if early_ns > 0:  # only a stop cuts this sleep short: returns would wake it for nothing
                return Wait(early_ns / 1e9, returns_wake=False)
        closed_loop = due_ns is None
        if closed_loop and phase.finished_issuing(issued=0, elapsed_ns=elapsed_ns, next_due_ns=None):
            return None
        ledger = self.ledger
        if not ledger.workers:
            raise DeadlineExceeded("every worker is lost; nothing can send requests")
        cap = phase.cap(elapsed_ns)
        turn: NextTurn | None = None
        if cap is None or ledger.outstanding_in(phase.name) < cap:
            if fixed_schedule:
                _, conversation_index, turn_index = self._trace[issued]
                turn = cursor.take(conversation_index, turn_index)
            else:
                turn = cursor.next_ready(now_ns)
        if turn is not None:
            worker_id = turn.worker_id or ledger.pick_worker()
            if worker_id is not None and ledger.has_room(worker_id):
                return self._issue(turn, worker_id, due_ns)
        wait_s = self._idle_limit_s
        next_ready_ns = cursor.next_ready_ns()
        if next_ready_ns is not None and next_ready_ns > now_ns:  # a turn's delay ends: look again then
            wait_s = min(wait_s, (next_ready_ns - now_ns) / 1e9)
        if closed_loop and phase.duration_ns is not None:
            wait_s = min(wait_s, max(0.0, (phase.duration_ns - elapsed_ns) / 1e9))
        return Wait(wait_s, returns_wake=True, idle=wait_s >= self._idle_limit_s)

    def _issue(self, turn: NextTurn, worker_id: str, due_ns: int | None) -> Issue:
        policy = self._policy
        credit = self.ledger.issue(self._phase.name, worker_id, turn.conversation_index, turn.turn_index)
        self._cursor.started(turn, worker_id)
        self._issued += 1
        cancel = policy.cancel_rate > 0 and float(self._cancel_rng.random()) < policy.cancel_rate
        scheduled_wall_ns = None if due_ns is None else self._start_wall_ns + due_ns
        return Issue(credit, scheduled_wall_ns, policy.cancel_after_ns if cancel else None)

    def _drain_s(self) -> float:
        if self.stop_reason is not None:
            return 0.0
        if self._phase.duration_ns is not None:
            return self._policy.grace_period_s
        return self._policy.request_timeout_s + DRAIN_MARGIN_S

    def _settled(self) -> bool:
        """No credit of the phase is out any more: the phase is done."""
        if self.ledger.outstanding_in(self._phase.name) == 0:
            self._stage = _Stage.DONE
            return True
        return False

    def _until_deadline(self, now_ns: int) -> Wait | None:
        """A wait for returns until the drain or cancel deadline; None once it passed."""
        assert self._deadline_ns is not None
        remaining_ns = self._deadline_ns - now_ns
        if remaining_ns <= 0:
            return None
        return Wait(remaining_ns / 1e9, returns_wake=True)

    def _abandon(self, credits: list[IssuedCredit]) -> list[IssuedCredit]:
        for credit in credits:
            self._cursor.abandon(credit.conversation_index)
        return credits
