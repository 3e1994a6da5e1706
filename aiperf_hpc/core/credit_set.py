"""A set of credit ids in one bit each, for the records service's "first record of a credit wins".

Credit ids are dense integers from 0 (`core.ledger` numbers them in issue order), so a bitmap
holds a million of them in 125 kB, where a Python set of ints takes about 60 bytes per id and grows
for as long as a run does. The bitmap grows (doubling) to the highest id seen.
"""

from __future__ import annotations


class CreditSet:
    """Credit ids seen so far. `add` says whether the id is new; `len` counts the distinct ids."""

    def __init__(self) -> None:
        self._bits = bytearray(1024)
        self._count = 0

    def add(self, credit_id: int) -> bool:
        """Add `credit_id`; False when it was already in. Raises ValueError for a negative id."""
        if credit_id < 0:
            raise ValueError(f"credit ids are >= 0, got {credit_id}")
        byte, mask = credit_id >> 3, 1 << (credit_id & 7)
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1, 2 * len(self._bits)) - len(self._bits)))
        if self._bits[byte] & mask:
            return False
        self._bits[byte] |= mask
        self._count += 1
        return True

    def __contains__(self, credit_id: object) -> bool:
        if not isinstance(credit_id, int) or credit_id < 0:
            return False
        byte = credit_id >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (credit_id & 7)))

    def __len__(self) -> int:
        return self._count

    @property
    def size_bytes(self) -> int:
        """Bytes the bitmap holds (about the highest id / 8)."""
        return len(self._bits)
