"""A transport that answers from a handler, without sockets: httpx's MockTransport for our seam.

    clock = ManualClock()
    async def handler(request: HttpRequest) -> HttpResponse:
        return stream(clock, (5 * MS, b'data: {"choices": ...}\\n\\n'), (1 * MS, b"data: [DONE]\\n\\n"))
    transport = FakeTransport(handler, clock)

The handler gets every request the worker sends and returns its response, raises a transport error
(`RequestTimeout`, `ConnectionFailed`) or waits (to be cancelled). `stream` and `whole` build
responses whose times come from a `ManualClock` moved by hand: no sleeping, no sockets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiperf_hpc.runtime.clock import Clock, ManualClock
from aiperf_hpc.runtime.transport import HttpRequest, HttpResponse

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class FakeTransport:
    """Implements `runtime.transport.Transport`: stamps each request sent at `clock`'s now, keeps it
    in `requests`, and answers with `handler`."""

    def __init__(self, handler: Handler, clock: Clock) -> None:
        self._handler = handler
        self._clock = clock
        self.requests: list[HttpRequest] = []
        self.closed = False

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        request.on_bytes_written(self._clock.perf_ns())
        response = await self._handler(request)
        request.status = response.status
        return response

    async def close(self) -> None:
        self.closed = True


def stream(clock: ManualClock, *pieces: tuple[int, bytes], status: int = 200) -> HttpResponse:
    """A streamed response: each `(gap_ns, data)` piece arrives `gap_ns` after the one before it (the
    first after now); the body ends with the last piece."""
    stamped = []
    for gap_ns, data in pieces:
        clock.advance(gap_ns)
        stamped.append((clock.perf_ns(), data))
    return HttpResponse(status, clock.perf_ns(), pieces=stamped)


def whole(clock: ManualClock, body: bytes, *, after_ns: int = 0, status: int = 200) -> HttpResponse:
    """A response read whole `after_ns` from now: a non-streamed body, or an error's."""
    clock.advance(after_ns)
    return HttpResponse(status, clock.perf_ns(), body=body)
