"""The credit ledger: which credit is held by which worker, and how much room each worker has.

Pure and synchronous. Every credit is issued once and settled once (returned, or lost with its
worker); a second settlement of the same id is refused and reported, never double-counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aiperf_hpc.protocol.messages import Phase


@dataclass(frozen=True, slots=True)
class IssuedCredit:
    credit_id: int
    phase: Phase
    worker_id: str
    conversation_index: int
    turn_index: int


@dataclass
class CreditLedger:
    """Tracks outstanding credits per worker. `pick_worker()` chooses where the next credit goes."""

    _slots: dict[str, int] = field(default_factory=dict)
    _load: dict[str, int] = field(default_factory=dict)
    _outstanding: dict[int, IssuedCredit] = field(default_factory=dict)
    _next_credit_id: int = 0
    issued: Counter[str] = field(default_factory=Counter)
    settled: Counter[str] = field(default_factory=Counter)

    def add_worker(self, worker_id: str, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"worker {worker_id} offers {slots} slots; it needs at least one")
        self._slots[worker_id] = slots
        self._load.setdefault(worker_id, 0)

    @property
    def workers(self) -> list[str]:
        return list(self._slots)

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)

    def outstanding_in(self, phase: str) -> int:
        return self.issued[phase] - self.settled[phase]

    def pick_worker(self) -> str | None:
        """The worker with the most free slots, or None when every worker is full."""
        best, best_free = None, 0
        for worker_id, slots in self._slots.items():
            free = slots - self._load[worker_id]
            if free > best_free:
                best, best_free = worker_id, free
        return best

    def has_room(self, worker_id: str) -> bool:
        return worker_id in self._slots and self._load[worker_id] < self._slots[worker_id]

    def issue(self, phase: Phase, worker_id: str, conversation_index: int, turn_index: int = 0) -> IssuedCredit:
        if worker_id not in self._slots:
            raise KeyError(f"unknown worker {worker_id}")
        credit = IssuedCredit(self._next_credit_id, phase, worker_id, conversation_index, turn_index)
        self._next_credit_id += 1
        self._outstanding[credit.credit_id] = credit
        self._load[worker_id] += 1
        self.issued[phase] += 1
        return credit

    def settle(self, credit_id: int) -> IssuedCredit | None:
        """Mark a credit returned. None when the id is unknown or already settled (a duplicate)."""
        credit = self._outstanding.pop(credit_id, None)
        if credit is None:
            return None
        self._load[credit.worker_id] -= 1
        self.settled[credit.phase] += 1
        return credit

    def remove_worker(self, worker_id: str) -> list[IssuedCredit]:
        """Forget a lost worker; its outstanding credits are settled as lost and returned."""
        self._slots.pop(worker_id, None)
        self._load.pop(worker_id, None)
        lost = [c for c in self._outstanding.values() if c.worker_id == worker_id]
        for credit in lost:
            del self._outstanding[credit.credit_id]
            self.settled[credit.phase] += 1
        return lost

    def held_by(self, worker_id: str) -> list[IssuedCredit]:
        return [c for c in self._outstanding.values() if c.worker_id == worker_id]
