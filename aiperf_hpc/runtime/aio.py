"""Small asyncio helpers that work on Python 3.10 (no asyncio.timeout / TaskGroup there)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from aiperf_hpc.errors import DeadlineExceeded

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], timeout_s: float, what: str) -> T:
    """Await with a deadline; on expiry raise `DeadlineExceeded` naming what was awaited."""
    try:
        return await asyncio.wait_for(awaitable, timeout_s)
    except asyncio.TimeoutError:
        raise DeadlineExceeded(f"timed out after {timeout_s:g} s waiting for {what}") from None


async def poll_until(condition: Callable[[], bool], timeout_s: float, interval_s: float) -> bool:
    """Check `condition` every `interval_s` until it holds (True) or `timeout_s` passes (False): for
    what gives no event to wait on, such as a child process's exit."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval_s)
    return True


async def run_together(*coros: Coroutine[Any, Any, None]) -> None:
    """Run named loops as one group: the first to finish or fail cancels the others.

    The first exception (if any) is re-raised after every task has ended, like a TaskGroup whose
    children are loops that normally run until the group is torn down.
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if task in done and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


class Wakeup:
    """A flag to wait on with a timeout, like `asyncio.wait_for(event.wait(), timeout)` without its
    cost: that makes a task per wait and, on expiry, cancels it and waits for the cancellation, which
    adds up on a hot loop that waits a thousand times a second. A wait here is one future and one
    timer handle."""

    def __init__(self) -> None:
        self._is_set = False
        self._waiters: list[asyncio.Future[bool]] = []

    def set(self) -> None:
        self._is_set = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._is_set = False

    def is_set(self) -> bool:
        return self._is_set

    async def wait(self, timeout_s: float) -> bool:
        """True once set (at once when it is), False when `timeout_s` passed first."""
        if self._is_set:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(timeout_s, _resolve, waiter, False)
        self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiters.remove(waiter)


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)
