"""The worker's request path, credit -> payload -> transport -> parse -> record, on a fake transport
and a manual clock: no sockets, no sleeping."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from aiperf_hpc.config import EndpointConfig, RunConfig
from aiperf_hpc.errors import ConnectionFailed, RequestTimeout
from aiperf_hpc.protocol.messages import Conversation, CreditDrop, RequestRecord, Turn
from aiperf_hpc.runtime.clock import ManualClock
from aiperf_hpc.runtime.transport import HttpRequest, HttpResponse
from aiperf_hpc.services.worker import RecordOrigin, RequestRunner
from tests.fakes.transport import FakeTransport, Handler, stream, whole

MS = 1_000_000
ORIGIN = RecordOrigin(worker_id="worker-7", node="node-a", clock_offset_ns=-40, clock_offset_bound_ns=5)


def chunk(content: str | None = None, usage: tuple[int, int] | None = None) -> bytes:
    event: dict[str, Any] = {"choices": [] if content is None else [{"index": 0, "delta": {"content": content}}]}
    if usage is not None:
        event["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    return b"data: " + orjson.dumps(event) + b"\n\n"


DONE = b"data: [DONE]\n\n"


def runner(
    handler: Handler, clock: ManualClock, *, streaming: bool = True, turns: int = 1
) -> tuple[RequestRunner, FakeTransport]:
    config = RunConfig(endpoint=EndpointConfig(model="m", streaming=streaming, api_key="k", headers={"X-A": "b"}))
    conversation = Conversation(
        index=0, session_id="s0", turns=[Turn(prompt=f"q{i}", input_tokens_target=11) for i in range(turns)]
    )
    transport = FakeTransport(handler, clock)
    return RequestRunner(config, [conversation], transport, ORIGIN, clock=clock), transport


def credit(turn_index: int = 0, **fields: Any) -> CreditDrop:
    return CreditDrop(
        credit_id=3 + turn_index, phase="profiling", conversation_index=0, turn_index=turn_index, **fields
    )


async def test_a_streamed_response_becomes_a_record_timed_from_the_send_by_arrival_stamps() -> None:
    clock = ManualClock()
    sent_perf_ns, sent_wall_ns = clock.perf_ns(), clock.wall_ns()

    async def handler(request: HttpRequest) -> HttpResponse:
        return stream(clock, (20 * MS, chunk("Hel") + chunk("lo")), (5 * MS, chunk(usage=(9, 2)) + DONE))

    requests, transport = runner(handler, clock)
    record = await requests.run(credit())

    assert record == RequestRecord(
        credit_id=3,
        phase="profiling",
        worker_id="worker-7",
        node="node-a",
        conversation_index=0,
        started_wall_ns=sent_wall_ns,
        latency_ns=25 * MS,
        response_times_ns=[20 * MS, 20 * MS],  # two events of one piece share its arrival
        status_code=200,
        input_tokens=9,
        output_tokens=2,
        output_tokens_source="usage",
        clock_offset_ns=-40,
        clock_offset_bound_ns=5,
    )
    [sent] = transport.requests
    assert sent.sent_perf_ns == sent_perf_ns
    assert sent.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert sent.streaming
    assert sent.headers == {"Content-Type": "application/json", "Authorization": "Bearer k", "X-A": "b"}
    assert orjson.loads(sent.body)["messages"] == [{"role": "user", "content": "q0"}]


async def test_without_usage_a_stream_counts_its_content_chunks_and_takes_the_turns_input_target() -> None:
    clock = ManualClock()

    async def handler(request: HttpRequest) -> HttpResponse:
        return stream(clock, (1 * MS, chunk("a")), (1 * MS, chunk("b")), (1 * MS, chunk("c") + DONE))

    record = await runner(handler, clock)[0].run(credit())
    assert record.response_times_ns == [1 * MS, 2 * MS, 3 * MS]
    assert (record.input_tokens, record.output_tokens, record.output_tokens_source) == (11, 3, "chunks")


async def test_a_body_read_whole_has_a_latency_but_no_token_times() -> None:
    clock = ManualClock()
    body = orjson.dumps(
        {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 4, "completion_tokens": 1}}
    )

    async def handler(request: HttpRequest) -> HttpResponse:
        assert not request.streaming
        return whole(clock, body, after_ns=7 * MS)

    record = await runner(handler, clock, streaming=False)[0].run(credit())
    assert (record.latency_ns, record.response_times_ns, record.status_code) == (7 * MS, [], 200)
    assert (record.output_tokens, record.output_tokens_source, record.error_type) == (1, "usage", None)


async def test_an_error_status_is_an_http_error_record_with_the_start_of_its_body() -> None:
    clock = ManualClock()

    async def handler(request: HttpRequest) -> HttpResponse:
        return whole(clock, b"overloaded " + b"x" * 400, after_ns=3 * MS, status=503)

    record = await runner(handler, clock)[0].run(credit())
    assert (record.error_type, record.status_code, record.latency_ns) == ("http_error", 503, 3 * MS)
    assert record.error_message == ("overloaded " + "x" * 400)[:300]


@pytest.mark.parametrize(
    ("error", "error_type", "message"),
    [
        (RequestTimeout(""), "timeout", "no complete response within 600 s"),
        (ConnectionFailed("Server disconnected"), "connection_error", "Server disconnected"),
        (ConnectionFailed(""), "connection_error", "connection_error"),
        (ValueError("bad\nsecond line"), "client_error", "ValueError: bad"),
    ],
)
async def test_transport_failures_become_records_timed_from_the_send(
    error: Exception, error_type: str, message: str
) -> None:
    clock = ManualClock()
    sent_wall_ns = clock.wall_ns()

    async def handler(request: HttpRequest) -> HttpResponse:
        clock.advance(9 * MS)
        raise error

    record = await runner(handler, clock)[0].run(credit())
    assert (record.error_type, record.error_message) == (error_type, message)
    assert (record.started_wall_ns, record.latency_ns, record.status_code) == (sent_wall_ns, 9 * MS, None)


async def test_a_timeout_after_the_head_keeps_the_status() -> None:
    clock = ManualClock()

    async def handler(request: HttpRequest) -> HttpResponse:
        request.status = 200  # as the real transport notes it once the head arrived
        raise RequestTimeout("")

    record = await runner(handler, clock)[0].run(credit())
    assert (record.error_type, record.status_code) == ("timeout", 200)


async def test_the_cancellation_delay_cancels_the_request_into_a_cancelled_record() -> None:
    clock = ManualClock()
    never = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        await never.wait()  # a server that never answers: only the cancellation ends this
        raise AssertionError("not reached")

    record = await runner(handler, clock)[0].run(credit(cancel_after_ns=0))
    assert (record.error_type, record.error_message) == ("cancelled", "cancelled by the client")


async def test_cancelling_the_task_mid_request_still_makes_a_record() -> None:
    clock = ManualClock()
    entered = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    requests, _ = runner(handler, clock)
    task = asyncio.ensure_future(requests.run(credit()))
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    record = await task
    assert record.error_type == "cancelled"


async def test_later_turns_carry_the_answers_so_far_and_a_failed_turn_adds_none() -> None:
    clock = ManualClock()
    answers = iter([chunk("a0") + DONE, None, chunk("a2") + DONE, chunk("a3") + DONE])

    async def handler(request: HttpRequest) -> HttpResponse:
        body = next(answers)
        if body is None:
            raise ConnectionFailed("reset")
        return stream(clock, (1 * MS, body))

    requests, transport = runner(handler, clock, turns=4)
    records = [await requests.run(credit(turn)) for turn in range(4)]

    assert [r.error_type for r in records] == [None, "connection_error", None, None]
    messages = [orjson.loads(r.body)["messages"] for r in transport.requests]
    assert messages[1] == [
        {"role": "user", "content": "q0"},
        {"role": "assistant", "content": "a0"},
        {"role": "user", "content": "q1"},
    ]
    assert messages[3] == [
        *messages[1][:2],
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "q3"},
    ]
