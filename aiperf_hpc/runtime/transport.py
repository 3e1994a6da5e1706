"""The worker's HTTP transport: one method, `send`, from an `HttpRequest` to an `HttpResponse`.

The seam between the worker's request path (credit -> payload -> send -> parse -> record) and the
network, in the manner of httpx's transports: `AiohttpTransport` is the real one; tests pass a fake
that answers from canned responses, without sockets (tests/fakes/transport.py).

What a transport owns, besides the bytes on the wire, is when they moved:
- the send time: `HttpRequest` is stamped when the worker decides to send, and the transport moves
  the stamp to when its bytes were handed to the connection (`on_bytes_written`), which can be later
  when the loop is busy: on Python < 3.12 aiohttp writes the body in a task of its own, which waits
  behind everything else the event loop has queued;
- the arrival time of every piece of a streamed body (`HttpResponse.pieces`), taken when the piece
  arrived, not when the reading task got to it (`runtime.arrivals`).

Failures: a transport raises `errors.RequestTimeout` when no complete response came within the
request timeout and `errors.ConnectionFailed` when the connection could not be made or broke;
anything else (a bug) propagates as it is. Cancelling the task that awaits `send` cancels the
request. A status of 300 or more is a response, not an exception: its body is returned whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Protocol

import aiohttp

from aiperf_hpc.errors import ConnectionFailed, RequestTimeout
from aiperf_hpc.runtime import arrivals
from aiperf_hpc.runtime.clock import SYSTEM_CLOCK, Clock


class HttpRequest:
    """One POST, and what the transport noted while sending it.

    `sent_perf_ns` starts as when the worker decided to send (read from `clock` here) and is moved by
    the transport to when the request's bytes were handed to the connection; `sent_wall_ns` is the
    same instant on the wall clock, anchored by one reading of each clock. `status` is set as soon as
    the response's head arrived, so a request that fails or is cancelled part-way still has both.
    """

    __slots__ = (
        "_decided_perf_ns",
        "_decided_wall_ns",
        "body",
        "headers",
        "sent_perf_ns",
        "status",
        "streaming",
        "url",
    )

    def __init__(self, url: str, body: bytes, headers: Mapping[str, str], streaming: bool, clock: Clock) -> None:
        self.url = url
        self.body = body
        self.headers = headers
        self.streaming = streaming
        self.status: int | None = None
        self._decided_wall_ns = clock.wall_ns()
        self._decided_perf_ns = self.sent_perf_ns = clock.perf_ns()

    def on_bytes_written(self, perf_ns: int) -> None:
        """The transport handed (some of) the request's bytes to the connection at `perf_ns`; only the
        first write counts (the headers and all or part of the body)."""
        if self.sent_perf_ns == self._decided_perf_ns:
            self.sent_perf_ns = perf_ns

    @property
    def sent_wall_ns(self) -> int:
        return self._decided_wall_ns + (self.sent_perf_ns - self._decided_perf_ns)


class HttpResponse:
    """A complete response. Streamed (`HttpRequest.streaming`) with a status below 300: `pieces` holds
    every piece of the body as received, with its arrival time (`perf_ns`), and `body` is empty.
    Otherwise `body` is the whole body (an error's too) and `pieces` is empty. `end_perf_ns` is when
    the body had been read to its end."""

    __slots__ = ("body", "end_perf_ns", "pieces", "status")

    def __init__(
        self, status: int, end_perf_ns: int, *, body: bytes = b"", pieces: Sequence[tuple[int, bytes]] = ()
    ) -> None:
        self.status = status
        self.end_perf_ns = end_perf_ns
        self.body = body
        self.pieces = pieces


class Transport(Protocol):
    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST `request` and read its response to the end; raises `RequestTimeout` or
        `ConnectionFailed` (module docstring). Called from the event loop, concurrently."""

    async def close(self) -> None:
        """Release the connections; called once, after every `send` ended."""


class AiohttpTransport:
    """The real transport: one aiohttp session with keep-alive connections, at most `slots` of them.

    Its clock must be the process's real one (the default): arrival stamps are taken inside aiohttp
    with `time.perf_counter_ns`. Make it inside the running loop that will send.
    """

    def __init__(self, slots: int, timeout_s: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        arrivals.install()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=slots, limit_per_host=slots, keepalive_timeout=60),
            # Every field set on purpose: setting only some silently drops the others' defaults.
            timeout=aiohttp.ClientTimeout(
                total=timeout_s, connect=timeout_s, sock_connect=timeout_s, sock_read=timeout_s
            ),
            auto_decompress=False,
            trace_configs=[self._send_stamp_trace()],
        )

    async def send(self, request: HttpRequest) -> HttpResponse:
        try:
            async with self._session.post(
                request.url, data=request.body, headers=request.headers, trace_request_ctx=request
            ) as response:
                status = request.status = response.status
                if status >= 300:
                    body = await response.read()
                    return HttpResponse(status, self._clock.perf_ns(), body=body)
                if request.streaming:
                    pieces = await arrivals.read_stamped(response.content)
                    return HttpResponse(status, self._clock.perf_ns(), pieces=pieces)
                body = await response.read()
                return HttpResponse(status, self._clock.perf_ns(), body=body)
        except asyncio.TimeoutError as exc:  # before ClientError: aiohttp's ServerTimeoutError is both
            raise RequestTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(str(exc)) from exc

    async def close(self) -> None:
        await self._session.close()

    def _send_stamp_trace(self) -> aiohttp.TraceConfig:
        """The session's trace config: moves the send stamp of the `HttpRequest` passed as a request's
        `trace_request_ctx` to when aiohttp wrote its bytes."""
        perf_ns = self._clock.perf_ns

        async def on_request_chunk_sent(
            session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestChunkSentParams
        ) -> None:
            request = context.trace_request_ctx
            if isinstance(request, HttpRequest):
                request.on_bytes_written(perf_ns())

        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(on_request_chunk_sent)
        return trace
