"""`AiohttpTransport` against a small aiohttp server on 127.0.0.1: the send stamp, the arrival stamps
of separate pieces, error statuses and the translation of aiohttp's failures.

The server's handlers wait on events the client side sets (never on time), so each piece is known to
have arrived before the next is written. Only the timeout test needs time to pass: its request
timeout has to expire."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aiperf_hpc.errors import ConnectionFailed, RequestTimeout
from aiperf_hpc.runtime import arrivals
from aiperf_hpc.runtime.clock import SYSTEM_CLOCK, ManualClock
from aiperf_hpc.runtime.transport import AiohttpTransport, HttpRequest

WAIT_S = 10  # bound on every wait of a handler; the events end them long before
HandlerFn = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[HandlerFn], Awaitable[str]]]:
    """Serve one handler at POST /; gives the URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: HandlerFn) -> str:
        app = web.Application()
        app.router.add_post("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/"

    yield start
    for runner in runners:
        await runner.cleanup()


def request(url: str, *, streaming: bool = True, body: bytes = b'{"q": 1}') -> HttpRequest:
    return HttpRequest(url, body, {"Content-Type": "application/json"}, streaming, SYSTEM_CLOCK)


async def test_streamed_pieces_keep_their_arrival_times_and_the_send_is_stamped_when_written(
    serve: Callable[[HandlerFn], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = AiohttpTransport(slots=2, timeout_s=30)  # installs the arrival stamps first
    watching, fed = asyncio.Event(), asyncio.Event()
    original_read, original_feed = arrivals.read_stamped, aiohttp.StreamReader.feed_data

    def read_stamped(reader: aiohttp.StreamReader) -> Any:
        watching.set()  # the watch begins before the server's handler runs again
        return original_read(reader)

    def feed_data(reader: aiohttp.StreamReader, data: bytes, *args: Any) -> Any:
        result = original_feed(reader, data, *args)
        if id(reader) in arrivals._watched:
            fed.set()
        return result

    monkeypatch.setattr(arrivals, "read_stamped", read_stamped)
    monkeypatch.setattr(aiohttp.StreamReader, "feed_data", feed_data)
    seen: dict[str, Any] = {}

    async def handler(http_request: web.Request) -> web.StreamResponse:
        seen["entered_ns"] = time.perf_counter_ns()
        seen["body"] = await http_request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(http_request)  # sends the head at once
        await asyncio.wait_for(watching.wait(), WAIT_S)
        await response.write(b"data: one\n\n")
        await asyncio.wait_for(fed.wait(), WAIT_S)
        seen["between_ns"] = time.perf_counter_ns()
        await response.write(b"data: two\n\n")
        await response.write_eof()
        return response

    url = await serve(handler)
    clock = ManualClock(perf_ns=1, wall_ns=1_700_000_000_000_000_000)  # decided long before the write
    sent = HttpRequest(url, b'{"q": 1}', {"Content-Type": "application/json"}, True, clock)
    before_ns = time.perf_counter_ns()
    response = await transport.send(sent)
    await transport.close()

    assert (response.status, sent.status, response.body, seen["body"]) == (200, 200, b"", b'{"q": 1}')
    assert [data for _, data in response.pieces] == [b"data: one\n\n", b"data: two\n\n"]
    (first_ns, _), (second_ns, _) = response.pieces
    assert first_ns <= seen["between_ns"] <= second_ns <= response.end_perf_ns
    assert before_ns <= sent.sent_perf_ns <= seen["entered_ns"]  # moved to when aiohttp wrote the bytes
    assert sent.sent_wall_ns == 1_700_000_000_000_000_000 + sent.sent_perf_ns - 1


async def test_a_body_is_read_whole_when_not_streamed(serve: Callable[[HandlerFn], Awaitable[str]]) -> None:
    async def handler(http_request: web.Request) -> web.StreamResponse:
        return web.json_response({"answer": 42})

    transport = AiohttpTransport(slots=1, timeout_s=30)
    before_ns = time.perf_counter_ns()
    response = await transport.send(request(await serve(handler), streaming=False))
    await transport.close()
    assert (response.status, response.body, response.pieces) == (200, b'{"answer": 42}', ())
    assert before_ns <= response.end_perf_ns


async def test_an_error_status_comes_back_whole_even_when_streaming(
    serve: Callable[[HandlerFn], Awaitable[str]],
) -> None:
    async def handler(http_request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="overloaded")

    transport = AiohttpTransport(slots=1, timeout_s=30)
    sent = request(await serve(handler))
    response = await transport.send(sent)
    await transport.close()
    assert (response.status, sent.status, response.body, response.pieces) == (503, 503, b"overloaded", ())


async def test_a_response_that_stalls_past_the_timeout_raises_request_timeout_after_its_status(
    serve: Callable[[HandlerFn], Awaitable[str]],
) -> None:
    release = asyncio.Event()

    async def handler(http_request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(http_request)
        await asyncio.wait_for(release.wait(), WAIT_S)
        return response

    transport = AiohttpTransport(slots=1, timeout_s=0.2)
    sent = request(await serve(handler))
    with pytest.raises(RequestTimeout):
        await transport.send(sent)
    release.set()
    await transport.close()
    assert sent.status == 200


async def test_a_refused_connection_raises_connection_failed_with_aiohttps_message() -> None:
    with socket.socket() as probe:  # a port nothing listens on once this socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = AiohttpTransport(slots=1, timeout_s=30)
    sent = request(f"http://127.0.0.1:{port}/")
    with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}") as caught:
        await transport.send(sent)
    await transport.close()
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)
    assert str(caught.value) == str(caught.value.__cause__)
    assert sent.status is None
