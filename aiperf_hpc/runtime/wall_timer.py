"""Waiting on the event loop until a wall-clock instant, to well under a millisecond, without spinning.

The loop's own timers have millisecond granularity (uvloop's fire from about 1 ms early to later),
which is too coarse for a request due at an exact time. Yielding to the loop until the instant
passes is precise but burns the CPU: at 500 requests a second per worker the worker never rests,
and on a small machine it takes the CPU from the server and the other processes, whose delays then
come back as send lag. On Linux a timerfd set to an absolute `CLOCK_REALTIME` instant (the clock of
`time.time_ns()`) is a kernel high-resolution timer the loop can watch like a socket: the worker
sleeps in `epoll` and wakes when the instant has come. One timerfd serves every waiter of a loop,
armed for the earliest deadline.

timerfd is not in Python's `os` module before 3.13, so it is called through `ctypes` from the C
library. Where it is missing (macOS), `WallTimer.create` returns None and the caller keeps the loop's
timers plus a short spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import itertools
import os
import sys
import time
from collections.abc import Callable

CLOCK_REALTIME = 0
TFD_TIMER_ABSTIME = 1
_NS_PER_S = 1_000_000_000


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class WallTimer:
    """Futures that resolve once `time.time_ns()` has reached their deadline, on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, settime: Callable[..., int]) -> None:
        self._loop = loop
        self._fd = fd
        self._settime = settime
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # ties: first come, first woken
        self._armed_ns: int | None = None
        loop.add_reader(fd, self._on_expired)

    @classmethod
    def create(cls, loop: asyncio.AbstractEventLoop) -> WallTimer | None:
        """A timer on `loop`; None where timerfd cannot be had (not Linux, no such call)."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            create, settime = libc.timerfd_create, libc.timerfd_settime
        except (OSError, AttributeError):
            return None
        create.argtypes, create.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        settime.restype = ctypes.c_int
        fd = create(CLOCK_REALTIME, os.O_NONBLOCK | os.O_CLOEXEC)  # TFD_NONBLOCK, TFD_CLOEXEC
        if fd < 0:
            return None
        return cls(loop, fd, settime)

    async def sleep_until(self, deadline_wall_ns: int) -> None:
        """Return once the wall clock has reached `deadline_wall_ns`; never before it."""
        if time.time_ns() >= deadline_wall_ns:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        heapq.heappush(self._waiters, (deadline_wall_ns, next(self._order), future))
        if self._armed_ns is None or deadline_wall_ns < self._armed_ns:
            self._arm(deadline_wall_ns)
        await future

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        for _, _, future in self._waiters:
            future.cancel()
        self._waiters.clear()

    def _on_expired(self) -> None:
        with contextlib.suppress(BlockingIOError):  # woken for a deadline that a later arm moved
            os.read(self._fd, 8)  # the expiry count; reading it re-quiets the fd
        now_ns = time.time_ns()
        while self._waiters and self._waiters[0][0] <= now_ns:
            future = heapq.heappop(self._waiters)[2]
            if not future.done():  # a cancelled waiter stays in the heap until its deadline
                future.set_result(None)
        self._armed_ns = None
        if self._waiters:
            self._arm(self._waiters[0][0])

    def _arm(self, deadline_wall_ns: int) -> None:
        """Make the fd readable at `deadline_wall_ns` (at once when it has passed). Raises OSError."""
        seconds, nanoseconds = divmod(deadline_wall_ns, _NS_PER_S)
        spec = _Itimerspec(it_value=_Timespec(seconds, nanoseconds))
        if self._settime(self._fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"timerfd_settime: {os.strerror(error)}")
        self._armed_ns = deadline_wall_ns
