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
