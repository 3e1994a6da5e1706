"""What `core.issuer.CreditIssuer.next_action` tells the timing shell to do next.

Plain values, made once per decision (an `Issue` per credit, a `Wait` per wait): the shell
dispatches on the class with `match` and never mutates them. They are not frozen because a frozen
dataclass costs three times as much to make (0.76 against 0.25 us), and one is made per credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiperf_hpc.core.ledger import IssuedCredit


@dataclass(slots=True)
class Issue:
    """Send `credit` (already in the ledger) to `credit.worker_id` as a `CreditDrop`."""

    credit: IssuedCredit
    scheduled_wall_ns: int | None  # the due time (wall clock); None in a closed loop
    cancel_after_ns: int | None  # the worker cancels the request this long after sending it


@dataclass(slots=True)
class Wait:
    """Wait at most `timeout_s`, then ask again.

    `returns_wake`: a credit return, a worker change or a stop ends the wait early; otherwise only
    a stop does (a sleep until the next due time). `idle`: the wait is the phase's idle limit, and
    ending by its timeout (not woken) fails the phase with `CreditIssuer.idle_error()`."""

    timeout_s: float
    returns_wake: bool
    idle: bool = False


@dataclass(slots=True)
class Cancel:
    """The drain deadline passed: send `CancelCredits` to each of `worker_ids` (workers holding
    credits); `outstanding` credits of the phase are still out."""

    worker_ids: list[str]
    outstanding: int


@dataclass(slots=True)
class Lose:
    """These credits (already settled in the ledger) never came back: push a `lost` record for each."""

    credits: list[IssuedCredit]
    reason: str


@dataclass(slots=True)
class PhaseDone:
    """The phase issued its credits and every one of them is settled."""


PHASE_DONE: Final = PhaseDone()

IssuerAction = Issue | Wait | Cancel | Lose | PhaseDone
