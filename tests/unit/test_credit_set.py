from __future__ import annotations

import random

import pytest

from aiperf_hpc.core.credit_set import CreditSet


def test_add_says_whether_the_id_is_new_and_len_counts_distinct_ids() -> None:
    seen = CreditSet()
    assert seen.add(0) and seen.add(7) and seen.add(8)
    assert not seen.add(7)
    assert len(seen) == 3
    assert 7 in seen and 8 in seen and 1 not in seen and -1 not in seen and "7" not in seen


def test_it_grows_to_the_highest_id_and_matches_a_set() -> None:
    rng = random.Random(0)
    seen, reference = CreditSet(), set()
    for credit_id in [rng.randrange(200_000) for _ in range(20_000)] + [1_000_000]:
        assert seen.add(credit_id) == (credit_id not in reference)
        reference.add(credit_id)
    assert len(seen) == len(reference)
    assert all(credit_id in seen for credit_id in reference)
    assert 1_000_001 not in seen and 10**12 not in seen
    assert 1_000_000 // 8 < seen.size_bytes <= 2 * (1_000_000 // 8 + 1)


def test_a_million_ids_take_an_eighth_of_a_megabyte() -> None:
    seen = CreditSet()
    for credit_id in range(1_000_000):
        seen.add(credit_id)
    assert len(seen) == 1_000_000
    assert seen.size_bytes <= 2**17  # 131,072 bytes, doubled from 1,024


def test_negative_ids_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        CreditSet().add(-1)
