"""The timerfd wall-clock timer, the spin fallback and `Wakeup`, on a real event loop and real clock.

What is asserted is order and never-early, which hold however busy the machine is; how late a wake
is belongs to benchmarks/ (the send lag of the rate row)."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from aiperf_hpc.runtime.aio import Wakeup
from aiperf_hpc.runtime.wall_timer import WallTimer
from aiperf_hpc.services.worker import _spin_until_wall

MS = 1_000_000

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux only")


async def test_waiters_wake_in_deadline_order_and_never_before_their_deadline() -> None:
    timer = WallTimer.create(asyncio.get_running_loop())
    assert timer is not None
    start_ns = time.time_ns()
    woken: list[tuple[int, int]] = []

    async def wait(deadline_ns: int) -> None:
        await timer.sleep_until(deadline_ns)
        woken.append((deadline_ns, time.time_ns()))

    # Added latest first: every new waiter is earlier than the armed one and must re-arm the fd.
    deadlines = [start_ns + offset * MS for offset in (30, 20, 10, 5)]
    await asyncio.gather(*(wait(deadline) for deadline in deadlines))
    timer.close()

    assert [deadline for deadline, _ in woken] == sorted(deadlines)
    assert all(now_ns >= deadline for deadline, now_ns in woken)


async def test_a_deadline_in_the_past_returns_at_once_and_a_cancelled_waiter_leaves_the_others_alone() -> None:
    timer = WallTimer.create(asyncio.get_running_loop())
    assert timer is not None
    await timer.sleep_until(time.time_ns() - MS)
    early = asyncio.ensure_future(timer.sleep_until(time.time_ns() + 5 * MS))
    later_deadline = time.time_ns() + 10 * MS
    later = asyncio.ensure_future(timer.sleep_until(later_deadline))
    await asyncio.sleep(0)  # ok: one loop turn, so both waiters are in the timer before one is cancelled
    early.cancel()
    await later
    assert time.time_ns() >= later_deadline
    assert early.cancelled()
    timer.close()


async def test_close_cancels_the_waiters() -> None:
    timer = WallTimer.create(asyncio.get_running_loop())
    assert timer is not None
    waiter = asyncio.ensure_future(timer.sleep_until(time.time_ns() + 60_000 * MS))
    await asyncio.sleep(0)  # ok: one loop turn, so the waiter is in the timer when it closes
    timer.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_the_spin_fallback_never_returns_before_the_deadline() -> None:
    for offset_ms in (0, 2, 8):
        deadline = time.time_ns() + offset_ms * MS
        await _spin_until_wall(deadline)
        assert time.time_ns() >= deadline


async def test_wakeup_returns_true_when_set_and_false_when_the_time_runs_out() -> None:
    wakeup = Wakeup()
    assert await wakeup.wait(0.001) is False
    waiter = asyncio.ensure_future(wakeup.wait(60.0))
    await asyncio.sleep(0)  # ok: one loop turn, so the waiter waits before the flag is set
    wakeup.set()
    assert await waiter is True
    assert await wakeup.wait(60.0) is True  # still set: returns at once
    wakeup.clear()
    assert wakeup.is_set() is False
    assert await wakeup.wait(0.001) is False
