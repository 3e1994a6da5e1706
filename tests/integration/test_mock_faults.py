"""The mock server's injected faults on the wire, over real HTTP on 127.0.0.1 (faults.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from aiperf_hpc.mock_server import MockServerConfig
from aiperf_hpc.mock_server.faults import FAULT_KINDS, MALFORMED_EVENT, NOT_JSON_BODY, FaultKind
from tests.integration.test_mock_server import CHAT_BODY, COMPLETIONS_BODY, mock_server, post, stats

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

STREAM_BODY: dict[str, Any] = {**CHAT_BODY, "stream": True, "max_tokens": 6}
DONE = b"data: [DONE]\n\n"


async def read_until_failure(response: aiohttp.ClientResponse) -> tuple[bytes, BaseException | None]:
    """The body bytes read, and the exception that ended the read early (None if it ended cleanly)."""
    received = bytearray()
    try:
        async for data in response.content.iter_any():
            received += data
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return bytes(received), exc
    return bytes(received), None


async def faulty_answer(kind: FaultKind, body: dict[str, Any], read_timeout_s: float = 20) -> tuple[Any, ...]:
    """(status, content type, bytes read, exception that ended the read, truth) for one request that
    gets fault `kind`."""
    async with mock_server(MockServerConfig(faults={kind: 1.0})) as (session, base):
        timeout = aiohttp.ClientTimeout(total=read_timeout_s, sock_read=read_timeout_s)
        try:
            async with session.post(f"{base}/v1/chat/completions", json=body, timeout=timeout) as response:
                received, failure = await read_until_failure(response)
                status, content_type = response.status, response.content_type
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            status, content_type, received, failure = None, None, b"", exc
        # wait_idle_s: the handler of a request whose client left has ended before the truth is read
        async with session.get(f"{base}/mock/stats?wait_idle_s=10") as answer:
            truth = await answer.json()
    return status, content_type, received, failure, truth


def events(received: bytes) -> list[bytes]:
    return [event for event in received.split(b"\n\n") if event]


async def test_disconnect_closes_a_stream_after_half_its_tokens() -> None:
    status, _, received, failure, truth = await faulty_answer("disconnect", STREAM_BODY)
    assert status == 200
    assert isinstance(failure, aiohttp.ClientPayloadError)
    assert received.endswith(b"\n\n")
    assert len(events(received)) == 1 + 3  # the role chunk and 3 of 6 tokens, each event whole
    assert truth["faults_injected"]["disconnect"] == 1
    assert truth["actual_ttft_ms"]["count"] == 0  # only streams that end as asked are timed


async def test_truncate_ends_a_stream_inside_an_event() -> None:
    _, _, received, failure, _ = await faulty_answer("truncate", STREAM_BODY)
    assert isinstance(failure, aiohttp.ClientPayloadError)
    assert not received.endswith(b"\n\n")
    assert len(events(received)) == 1 + 3 + 1  # the last one is half an event
    with pytest.raises(json.JSONDecodeError):
        json.loads(events(received)[-1].removeprefix(b"data: "))


async def test_malformed_puts_an_event_that_is_not_json_inside_a_complete_stream() -> None:
    _, _, received, failure, _ = await faulty_answer("malformed", STREAM_BODY)
    assert failure is None
    assert MALFORMED_EVENT in received
    assert received.endswith(DONE)
    assert received.index(MALFORMED_EVENT) < received.index(b'"finish_reason":"length"')


async def test_no_done_ends_a_stream_cleanly_without_done() -> None:
    _, _, received, failure, _ = await faulty_answer("no-done", STREAM_BODY)
    assert failure is None
    assert DONE not in received
    assert b'"finish_reason":"length"' in events(received)[-1]


async def test_stall_sends_half_the_tokens_then_nothing_until_the_client_leaves() -> None:
    _, _, received, failure, truth = await faulty_answer("stall", STREAM_BODY, read_timeout_s=0.5)
    assert isinstance(failure, asyncio.TimeoutError)
    assert len(events(received)) == 1 + 3
    assert truth["requests_in_flight"] == 0  # the server ended the handler once the client left


@pytest.mark.parametrize("body", [STREAM_BODY, CHAT_BODY], ids=["streamed", "non-streamed"])
async def test_non_json_is_a_plain_text_200(body: dict[str, Any]) -> None:
    status, content_type, received, failure, _ = await faulty_answer("non-json", body)
    assert (status, content_type, received, failure) == (200, "text/plain", NOT_JSON_BODY, None)


async def test_non_streamed_faults() -> None:
    _, _, _, disconnect, _ = await faulty_answer("disconnect", CHAT_BODY)
    assert isinstance(disconnect, aiohttp.ServerDisconnectedError)
    status, _, received, truncate, _ = await faulty_answer("truncate", CHAT_BODY)
    assert status == 200 and isinstance(truncate, aiohttp.ClientPayloadError) and received.startswith(b'{"id":')
    _, _, received, stall, truth = await faulty_answer("stall", CHAT_BODY, read_timeout_s=0.5)
    assert isinstance(stall, asyncio.TimeoutError) and received == b""
    assert truth["faults_injected"]["stall"] == 1


@pytest.mark.parametrize("kind", ["malformed", "no-done"])
async def test_stream_only_faults_leave_a_non_streamed_answer_alone(kind: FaultKind) -> None:
    status, _, received, failure, truth = await faulty_answer(kind, CHAT_BODY)
    assert (status, failure) == (200, None)
    assert json.loads(received)["object"] == "chat.completion"
    assert truth["faults_injected"][kind] == 0


async def test_the_truth_counts_each_fault_and_each_error_status() -> None:
    faults: dict[FaultKind, float] = {"non-json": 0.2, "malformed": 0.2}
    config = MockServerConfig(error_rate=0.4, error_statuses=[429, 503], faults=faults, random_seed=5)
    async with mock_server(config) as (session, base):
        answers = [await post(session, f"{base}/v1/chat/completions", STREAM_BODY) for _ in range(60)]
        truth = await stats(session, base)
    statuses = [status for status, _, _ in answers]
    plain = sum(content_type.startswith("text/plain") for _, _, content_type in answers)
    malformed = sum(MALFORMED_EVENT in raw for _, raw, _ in answers)
    assert truth["errors_by_status"] == {"429": statuses.count(429), "503": statuses.count(503)}
    assert statuses.count(429) > 0 and statuses.count(503) > 0
    assert truth["errors_injected"] == statuses.count(429) + statuses.count(503)
    assert truth["faults_injected"] == {kind: 0 for kind in FAULT_KINDS} | {"non-json": plain, "malformed": malformed}
    assert plain > 0 and malformed > 0
    assert truth["requests_total"] == 60


async def test_fault_injection_is_deterministic_per_seed() -> None:
    config = MockServerConfig(faults={"non-json": 0.5}, error_rate=0.2, error_statuses=[429, 503], random_seed=3)

    async def answers() -> list[tuple[int, str]]:
        async with mock_server(config) as (session, base):
            url = f"{base}/v1/completions"
            return [
                (status, content_type)
                for status, _, content_type in [await post(session, url, COMPLETIONS_BODY) for _ in range(30)]
            ]

    first, second = await answers(), await answers()
    assert first == second
    assert {status for status, _ in first} == {200, 429, 503}
    assert "text/plain" in {content_type for _, content_type in first}
