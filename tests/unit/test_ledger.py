from __future__ import annotations

import pytest

from aiperf_hpc.core.ledger import CreditLedger


def test_pick_worker_prefers_the_most_free_slots_and_none_when_full() -> None:
    ledger = CreditLedger()
    ledger.add_worker("a", 2)
    ledger.add_worker("b", 1)
    assert ledger.pick_worker() == "a"
    ledger.issue("profiling", "a", 0)
    assert ledger.pick_worker() == "a"  # a: 1 free, b: 1 free -> first wins
    ledger.issue("profiling", "a", 1)
    assert ledger.pick_worker() == "b"
    ledger.issue("profiling", "b", 2)
    assert ledger.pick_worker() is None


def test_a_credit_settles_once_and_duplicates_are_refused() -> None:
    ledger = CreditLedger()
    ledger.add_worker("a", 4)
    credit = ledger.issue("warmup", "a", 7)
    assert credit.credit_id == 0 and credit.conversation_index == 7
    assert ledger.settle(credit.credit_id) == credit
    assert ledger.settle(credit.credit_id) is None
    assert ledger.settle(12345) is None
    assert ledger.issued["warmup"] == 1 and ledger.settled["warmup"] == 1
    assert ledger.outstanding == 0


def test_credit_ids_are_unique_across_phases() -> None:
    ledger = CreditLedger()
    ledger.add_worker("a", 10)
    ids = [ledger.issue("warmup", "a", 0).credit_id for _ in range(3)]
    ids += [ledger.issue("profiling", "a", 0).credit_id for _ in range(3)]
    assert ids == [0, 1, 2, 3, 4, 5]
    assert ledger.outstanding_in("warmup") == 3 and ledger.outstanding_in("profiling") == 3


def test_removing_a_worker_settles_its_credits_as_lost() -> None:
    ledger = CreditLedger()
    ledger.add_worker("a", 2)
    ledger.add_worker("b", 2)
    lost_credit = ledger.issue("profiling", "a", 0)
    kept = ledger.issue("profiling", "b", 1)
    lost = ledger.remove_worker("a")
    assert lost == [lost_credit]
    assert ledger.workers == ["b"]
    assert ledger.outstanding_in("profiling") == 1
    assert ledger.settle(lost_credit.credit_id) is None  # a late return of a lost credit is ignored
    assert ledger.settle(kept.credit_id) == kept


def test_a_worker_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        CreditLedger().add_worker("a", 0)
