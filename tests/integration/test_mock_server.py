"""The bundled mock server over real HTTP on 127.0.0.1: wire format, pacing lower bounds and truth."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import aiperf_hpc
from aiperf_hpc.mock_server import MockServerConfig, create_app
from aiperf_hpc.mock_server.payloads import WORDS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

CHAT_BODY: dict[str, Any] = {
    "model": "mock-model",
    "messages": [
        {"role": "system", "content": "you are terse"},
        {"role": "user", "content": "say  five words\nplease"},
    ],
}
CHAT_PROMPT_WORDS = 7
# A child process imports the same aiperf_hpc as this test, installed or not.
PACKAGE_ROOT = str(Path(aiperf_hpc.__file__).resolve().parents[1])
COMPLETIONS_BODY: dict[str, Any] = {"model": "mock-model", "prompt": "one two three"}


@asynccontextmanager
async def mock_server(config: MockServerConfig) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """A real server on 127.0.0.1 (port chosen by the OS) and a client session; yields (session, base_url)."""
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    timeout = aiohttp.ClientTimeout(total=20, connect=5, sock_connect=5, sock_read=20)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield session, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def sse_events(body: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, checking the framing on the way."""
    text = body.decode()
    assert text.endswith("\n\n")
    events = text[: -len("\n\n")].split("\n\n")
    assert all(event.startswith("data: ") for event in events), events
    return [event[len("data: ") :] for event in events]


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
    async with session.post(url, json=body) as response:
        return response.status, await response.read(), response.headers.get("Content-Type", "")


async def stats(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    async with session.get(f"{base_url}/mock/stats") as response:
        assert response.status == 200
        result: dict[str, Any] = await response.json()
        return result


def assert_chunk_envelope(chunk: dict[str, Any], object_: str, model: str = "mock-model") -> None:
    assert set(chunk) >= {"id", "object", "created", "model", "choices"}
    assert chunk["object"] == object_
    assert chunk["model"] == model
    assert isinstance(chunk["created"], int)


async def test_chat_stream_without_usage_is_role_tokens_finish_done() -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        body = {**CHAT_BODY, "stream": True, "max_tokens": 5}
        status, raw, content_type = await post(session, f"{base}/v1/chat/completions", body)

    assert status == 200
    assert content_type.startswith("text/event-stream")
    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert len(chunks) == 1 + 5 + 1
    for chunk in chunks:
        assert_chunk_envelope(chunk, "chat.completion.chunk")
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    contents = [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:6]]
    assert contents == list(WORDS[:5])
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[1:6])
    assert chunks[6]["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}]


async def test_chat_stream_with_include_usage_ends_with_usage_chunk() -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        body = {**CHAT_BODY, "stream": True, "max_tokens": 3, "stream_options": {"include_usage": True}}
        status, raw, _ = await post(session, f"{base}/v1/chat/completions", body)

    assert status == 200
    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert len(chunks) == 1 + 3 + 1 + 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [chunk["choices"][0]["delta"] for chunk in chunks[1:4]] == [{"content": w} for w in WORDS[:3]]
    assert chunks[4]["choices"][0]["finish_reason"] == "length"
    usage_chunk = chunks[5]
    assert_chunk_envelope(usage_chunk, "chat.completion.chunk")
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": CHAT_PROMPT_WORDS,
        "completion_tokens": 3,
        "total_tokens": CHAT_PROMPT_WORDS + 3,
    }


async def test_completions_stream_carries_text_chunks() -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        body = {
            **COMPLETIONS_BODY,
            "prompt": ["one two", "three four five"],
            "stream": True,
            "max_tokens": 4,
            "stream_options": {"include_usage": True},
        }
        status, raw, content_type = await post(session, f"{base}/v1/completions", body)

    assert status == 200
    assert content_type.startswith("text/event-stream")
    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert len(chunks) == 4 + 1 + 1
    for chunk in chunks:
        assert_chunk_envelope(chunk, "text_completion")
    assert [chunk["choices"] for chunk in chunks[:4]] == [
        [{"index": 0, "text": w, "logprobs": None, "finish_reason": None}] for w in WORDS[:4]
    ]
    assert chunks[4]["choices"] == [{"index": 0, "text": "", "logprobs": None, "finish_reason": "length"}]
    assert chunks[5]["choices"] == []
    assert chunks[5]["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}


async def test_non_stream_chat_returns_message_and_usage() -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        status, raw, content_type = await post(session, f"{base}/v1/chat/completions", {**CHAT_BODY, "max_tokens": 20})

    assert status == 200
    assert content_type.startswith("application/json")
    result = json.loads(raw)
    assert result["object"] == "chat.completion"
    assert result["model"] == "mock-model"
    (choice,) = result["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "".join(WORDS) + "".join(WORDS[:4])
    assert choice["finish_reason"] == "length"
    assert result["usage"] == {
        "prompt_tokens": CHAT_PROMPT_WORDS,
        "completion_tokens": 20,
        "total_tokens": CHAT_PROMPT_WORDS + 20,
    }


async def test_non_stream_completions_returns_text_and_usage() -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        status, raw, _ = await post(session, f"{base}/v1/completions", {**COMPLETIONS_BODY, "max_tokens": 2})

    assert status == 200
    result = json.loads(raw)
    assert result["object"] == "text_completion"
    assert result["choices"] == [{"index": 0, "text": "".join(WORDS[:2]), "logprobs": None, "finish_reason": "length"}]
    assert result["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


@pytest.mark.parametrize(
    ("extra", "expected_tokens", "expected_finish"),
    [
        ({"max_tokens": 9}, 9, "length"),
        ({"max_completion_tokens": 4, "max_tokens": 9}, 4, "length"),
        ({}, 6, "stop"),
    ],
)
async def test_output_length_follows_request_then_default(
    extra: dict[str, Any], expected_tokens: int, expected_finish: str
) -> None:
    async with mock_server(MockServerConfig(default_output_tokens=6)) as (session, base):
        body = {**CHAT_BODY, **extra, "stream": True, "stream_options": {"include_usage": True}}
        _, raw, _ = await post(session, f"{base}/v1/chat/completions", body)

    chunks = [json.loads(event) for event in sse_events(raw)[:-1]]
    content_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) == expected_tokens
    assert chunks[-2]["choices"][0]["finish_reason"] == expected_finish
    assert chunks[-1]["usage"]["completion_tokens"] == expected_tokens


async def test_models_and_health() -> None:
    async with mock_server(MockServerConfig(model_names=["m-a", "m-b"])) as (session, base):
        async with session.get(f"{base}/v1/models") as response:
            assert response.status == 200
            models = await response.json()
        async with session.get(f"{base}/health") as response:
            assert response.status == 200
            assert await response.text() == "ok"

    assert models["object"] == "list"
    assert [model["id"] for model in models["data"]] == ["m-a", "m-b"]
    assert all(model["object"] == "model" for model in models["data"])


async def test_unknown_model_is_404_like_vllm() -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        status, raw, _ = await post(session, f"{base}/v1/chat/completions", {**CHAT_BODY, "model": "nope"})

    assert status == 404
    assert json.loads(raw) == {
        "error": {"message": "The model `nope` does not exist.", "type": "NotFoundError", "code": 404}
    }


async def test_invalid_json_is_400() -> None:
    async with (
        mock_server(MockServerConfig()) as (session, base),
        session.post(
            f"{base}/v1/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"}
        ) as response,
    ):
        status = response.status
        error = (await response.json())["error"]

    assert status == 400
    assert error["code"] == 400
    assert error["type"] == "BadRequestError"
    assert "JSON" in error["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "mock-model"}),
        ("/v1/chat/completions", {"model": "mock-model", "messages": []}),
        ("/v1/completions", {"model": "mock-model"}),
        ("/v1/completions", {**COMPLETIONS_BODY, "max_tokens": 0}),
    ],
)
async def test_missing_or_invalid_fields_are_400(path: str, body: dict[str, Any]) -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        status, raw, _ = await post(session, f"{base}{path}", body)

    assert status == 400
    assert set(json.loads(raw)["error"]) == {"message", "type", "code"}


async def test_error_rate_one_answers_every_request_with_error_status() -> None:
    async with mock_server(MockServerConfig(error_rate=1.0)) as (session, base):
        results = [
            await post(session, f"{base}/v1/chat/completions", {**CHAT_BODY, "stream": True}),
            await post(session, f"{base}/v1/completions", COMPLETIONS_BODY),
            await post(session, f"{base}/v1/chat/completions", CHAT_BODY),
        ]
        truth = await stats(session, base)

    assert [status for status, _, _ in results] == [500, 500, 500]
    assert all(json.loads(raw)["error"]["code"] == 500 for _, raw, _ in results)
    assert truth["errors_injected"] == 3
    assert truth["requests_total"] == 3


async def test_error_injection_is_deterministic_per_seed() -> None:
    config = MockServerConfig(error_rate=0.5, error_statuses=[503], random_seed=7)

    async def statuses() -> list[int]:
        async with mock_server(config) as (session, base):
            return [(await post(session, f"{base}/v1/completions", COMPLETIONS_BODY))[0] for _ in range(40)]

    first, second = await statuses(), await statuses()
    assert first == second
    assert set(first) == {200, 503}


async def test_max_in_flight_counts_overlapping_requests() -> None:
    concurrent = 5
    async with mock_server(MockServerConfig(ttft_ms=200)) as (session, base):
        body = {**CHAT_BODY, "stream": True, "max_tokens": 2}
        results = await asyncio.gather(*(post(session, f"{base}/v1/chat/completions", body) for _ in range(concurrent)))
        truth = await stats(session, base)

    assert [status for status, _, _ in results] == [200] * concurrent
    assert truth["max_in_flight"] == concurrent
    assert truth["requests_in_flight"] == 0
    assert truth["requests_total"] == concurrent
    assert truth["ttft_ms"] == 200
    assert truth["itl_ms"] == 0


async def test_reset_zeroes_counters() -> None:
    async with mock_server(MockServerConfig(error_rate=1.0)) as (session, base):
        await post(session, f"{base}/v1/completions", COMPLETIONS_BODY)
        before = await stats(session, base)
        async with session.post(f"{base}/mock/stats/reset") as response:
            assert response.status == 200
        after = await stats(session, base)

    assert (before["requests_total"], before["errors_injected"], before["max_in_flight"]) == (1, 1, 1)
    assert (after["requests_total"], after["errors_injected"], after["max_in_flight"]) == (0, 0, 0)
    assert after["requests_in_flight"] == 0


async def test_first_content_chunk_waits_at_least_ttft() -> None:
    ttft_s = 0.1
    async with mock_server(MockServerConfig(ttft_ms=ttft_s * 1000, itl_ms=1)) as (session, base):
        body = {**CHAT_BODY, "stream": True, "max_tokens": 3}
        sent_s = time.perf_counter()
        async with session.post(f"{base}/v1/chat/completions", json=body) as response:
            async for line in response.content:
                if line.startswith(b"data: {"):
                    delta = json.loads(line[len(b"data: ") :])["choices"][0]["delta"]
                    if delta.get("content"):
                        first_content_s = time.perf_counter()
                        break
            else:
                pytest.fail("stream ended without a content chunk")

    assert first_content_s - sent_s >= ttft_s


async def test_chat_role_chunk_arrives_with_the_first_token() -> None:
    async with mock_server(MockServerConfig(ttft_ms=100, itl_ms=1)) as (session, base):
        body = {**CHAT_BODY, "stream": True, "max_tokens": 3}
        async with session.post(f"{base}/v1/chat/completions", json=body) as response:
            first_read = await response.content.readany()
            rest = await response.read()

    # Written on arrival, the role chunk would be read alone, 100 ms before the first token.
    first_events = sse_events(first_read)
    assert json.loads(first_events[0])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert json.loads(first_events[1])["choices"][0]["delta"] == {"content": WORDS[0]}
    assert sse_events(first_read + rest)[-1] == "[DONE]"


async def test_stats_time_each_stream_that_ended_as_asked_until_reset() -> None:
    ttft_ms = 20.0
    async with mock_server(MockServerConfig(ttft_ms=ttft_ms, itl_ms=2)) as (session, base):
        empty = await stats(session, base)
        for max_tokens in (4, 4, 4, 1):
            status, _, _ = await post(
                session, f"{base}/v1/chat/completions", {**CHAT_BODY, "stream": True, "max_tokens": max_tokens}
            )
            assert status == 200
        await post(session, f"{base}/v1/chat/completions", CHAT_BODY)  # not streamed: not timed
        truth = await stats(session, base)
        async with session.post(f"{base}/mock/stats/reset") as response:
            assert response.status == 200
        after_reset = await stats(session, base)

    none = {"count": 0, "mean": None, "p50": None, "p99": None, "max": None}
    assert empty["actual_ttft_ms"] == empty["actual_itl_ms"] == none
    ttft, itl = truth["actual_ttft_ms"], truth["actual_itl_ms"]
    assert ttft["count"] == 4
    assert itl["count"] == 3  # a one-token stream has no inter-token latency
    for figures in (ttft, itl):
        assert 0 <= figures["p50"] <= figures["p99"] <= figures["max"]
        assert figures["mean"] <= figures["max"]
    assert ttft["p50"] >= ttft_ms  # never early: the first token waits for its deadline
    assert (truth["ttft_ms"], truth["itl_ms"]) == (ttft_ms, 2)  # the configured values stay beside them
    assert after_reset["actual_ttft_ms"] == after_reset["actual_itl_ms"] == none


@asynccontextmanager
async def mock_server_process(config_code: str = "MockServerConfig()") -> AsyncIterator[tuple[Process, int]]:
    """`run_mock_server` in a child process on a free port of 127.0.0.1; yields (process, port) and kills
    the process on the way out if it is still running."""
    code = (
        "from aiperf_hpc.mock_server import MockServerConfig, run_mock_server; "
        f"run_mock_server({config_code}, host='127.0.0.1', port=0)"
    )
    python_path = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=15)).decode()
        prefix = "mock-server listening on http://127.0.0.1:"
        assert line.startswith(prefix), line
        port = int(line[len(prefix) :])
        assert port > 0
        yield process, port
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_mock_server_reports_port_and_stops_cleanly_on_signal(signum: signal.Signals) -> None:
    async with mock_server_process() as (process, port):
        timeout = aiohttp.ClientTimeout(total=5, connect=5, sock_connect=5, sock_read=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://127.0.0.1:{port}/health") as response,
        ):
            assert response.status == 200
        process.send_signal(signum)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=10)

    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    assert stdout == b""


async def test_run_mock_server_ends_a_request_whose_client_left() -> None:
    """The served app cancels the handler of a client that disconnects: the 30 s TTFT never runs out."""
    timeout = aiohttp.ClientTimeout(total=10, connect=5, sock_connect=5, sock_read=10)
    async with (
        mock_server_process("MockServerConfig(ttft_ms=30_000)") as (_, port),
        aiohttp.ClientSession(timeout=timeout) as session,
    ):
        base = f"http://127.0.0.1:{port}"
        async with session.post(f"{base}/v1/chat/completions", json={**CHAT_BODY, "stream": True}) as response:
            assert response.status == 200  # headers are sent before the first token is due
            during = await stats(session, base)
            response.close()
        after = await get_json(session, f"{base}/mock/stats?wait_idle_s=5")

    assert during["requests_in_flight"] == 1
    assert (after["requests_in_flight"], after["requests_total"]) == (0, 1)


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def assert_unit_vector(vector: list[float]) -> None:
    assert len(vector) == 8
    assert all(isinstance(value, float) for value in vector)
    assert abs(sum(value * value for value in vector) - 1.0) < 1e-9


async def test_embeddings_of_a_string_is_one_vector_with_usage() -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        status, raw, content_type = await post(
            session, f"{base}/v1/embeddings", {"model": "mock-model", "input": "embed these four words"}
        )

    assert status == 200
    assert content_type.startswith("application/json")
    result = json.loads(raw)
    assert result["object"] == "list"
    assert result["model"] == "mock-model"
    (item,) = result["data"]
    assert (item["object"], item["index"]) == ("embedding", 0)
    assert_unit_vector(item["embedding"])
    assert result["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


async def test_embeddings_of_a_list_are_one_vector_each_and_deterministic() -> None:
    inputs = ["alpha beta", "gamma", "alpha beta"]
    async with mock_server(MockServerConfig()) as (session, base):
        _, raw, _ = await post(session, f"{base}/v1/embeddings", {"model": "mock-model", "input": inputs})
        _, again, _ = await post(session, f"{base}/v1/embeddings", {"input": "gamma"})
    async with mock_server(MockServerConfig(random_seed=99)) as (session, base):
        _, other_server, _ = await post(session, f"{base}/v1/embeddings", {"input": ["alpha beta"]})

    result = json.loads(raw)
    assert [item["index"] for item in result["data"]] == [0, 1, 2]
    vectors = [item["embedding"] for item in result["data"]]
    for vector in vectors:
        assert_unit_vector(vector)
    assert vectors[0] == vectors[2]
    assert vectors[0] != vectors[1]
    assert json.loads(again)["data"][0]["embedding"] == vectors[1]
    assert json.loads(other_server)["data"][0]["embedding"] == vectors[0]
    assert result["usage"] == {"prompt_tokens": 5, "total_tokens": 5}


async def test_embeddings_unknown_model_is_404() -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        status, raw, _ = await post(session, f"{base}/v1/embeddings", {"model": "nope", "input": "x"})

    assert status == 404
    assert json.loads(raw)["error"] == {
        "message": "The model `nope` does not exist.",
        "type": "NotFoundError",
        "code": 404,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"model": "mock-model"},
        {"model": "mock-model", "input": []},
        {"model": "mock-model", "input": 7},
        {"model": "mock-model", "input": ["ok", 3]},
        {"model": "mock-model", "input": "x", "encoding_format": "base64"},
        {"model": 5, "input": "x"},
        ["not", "an", "object"],
    ],
)
async def test_embeddings_bad_body_is_400(body: Any) -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        status, raw, _ = await post(session, f"{base}/v1/embeddings", body)
        truth = await stats(session, base)

    assert status == 400
    assert json.loads(raw)["error"]["type"] == "BadRequestError"
    assert truth["requests_total"] == 1
    assert truth["requests_in_flight"] == 0


async def test_embeddings_count_in_stats_and_take_injected_errors() -> None:
    async with mock_server(MockServerConfig(error_rate=1.0, error_statuses=[503])) as (session, base):
        status, raw, _ = await post(session, f"{base}/v1/embeddings", {"input": "x"})
        truth = await stats(session, base)

    assert status == 503
    assert json.loads(raw)["error"]["code"] == 503
    assert (truth["requests_total"], truth["errors_injected"], truth["requests_in_flight"]) == (1, 1, 0)


async def test_embeddings_answer_waits_at_least_ttft() -> None:
    ttft_s = 0.1
    async with mock_server(MockServerConfig(ttft_ms=ttft_s * 1000)) as (session, base):
        sent_s = time.perf_counter()
        status, _, _ = await post(session, f"{base}/v1/embeddings", {"input": "x"})
        answered_s = time.perf_counter()

    assert status == 200
    assert answered_s - sent_s >= ttft_s


async def test_without_usage_no_answer_carries_usage() -> None:
    async with mock_server(MockServerConfig(send_usage=False)) as (session, base):
        stream_body = {**CHAT_BODY, "stream": True, "max_tokens": 2, "stream_options": {"include_usage": True}}
        _, streamed, _ = await post(session, f"{base}/v1/chat/completions", stream_body)
        completions_stream = {**COMPLETIONS_BODY, "stream": True, "stream_options": {"include_usage": True}}
        _, streamed_completions, _ = await post(session, f"{base}/v1/completions", completions_stream)
        _, chat, _ = await post(session, f"{base}/v1/chat/completions", {**CHAT_BODY, "max_tokens": 2})
        _, completion, _ = await post(session, f"{base}/v1/completions", COMPLETIONS_BODY)
        _, embedding, _ = await post(session, f"{base}/v1/embeddings", {"input": "x"})

    for raw in (streamed, streamed_completions):
        events = sse_events(raw)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(event) for event in events[:-1]]
        assert all("usage" not in chunk for chunk in chunks)
        assert chunks[-1]["choices"][0]["finish_reason"] is not None
    chat_result = json.loads(chat)
    assert "usage" not in chat_result
    assert chat_result["choices"][0]["message"]["content"] == "".join(WORDS[:2])
    assert "usage" not in json.loads(completion)
    embedding_result = json.loads(embedding)
    assert "usage" not in embedding_result
    assert len(embedding_result["data"]) == 1


async def test_client_disconnect_mid_stream_ends_the_request_in_flight() -> None:
    async with mock_server(MockServerConfig(itl_ms=10)) as (session, base):
        body = {**CHAT_BODY, "stream": True, "max_tokens": 1000}
        async with session.post(f"{base}/v1/chat/completions", json=body) as response:
            async for line in response.content:
                if line.startswith(b"data: {") and b'"content":" ' in line:
                    break
            else:
                pytest.fail("stream ended without a content chunk")
            during = await stats(session, base)
            response.close()  # drops the connection mid-stream, as a cancelled client does
        after = await get_json(session, f"{base}/mock/stats?wait_idle_s=5")

    assert during["requests_in_flight"] == 1
    assert after["requests_in_flight"] == 0
    assert after["requests_total"] == 1


async def test_client_gone_before_a_paced_body_ends_the_request_in_flight() -> None:
    async with mock_server(MockServerConfig(ttft_ms=300)) as (session, base):
        impatient = aiohttp.ClientTimeout(total=0.05)
        with pytest.raises(asyncio.TimeoutError):
            await session.post(f"{base}/v1/embeddings", json={"input": "x"}, timeout=impatient)
        after = await get_json(session, f"{base}/mock/stats?wait_idle_s=5")

    assert after["requests_in_flight"] == 0
    assert after["requests_total"] == 1


async def test_stats_wait_idle_rejects_a_bad_duration() -> None:
    async with mock_server(MockServerConfig()) as (session, base):
        for value in ("soon", "-1", "nan"):
            async with session.get(f"{base}/mock/stats", params={"wait_idle_s": value}) as response:
                assert response.status == 400
                assert "wait_idle_s" in (await response.json())["error"]["message"]


async def test_request_log_records_each_valid_request_in_arrival_order() -> None:
    long_question = "a question that is much longer than forty characters in total"
    conversation = {
        "model": "m-b",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": long_question}]},
        ],
        "max_completion_tokens": 3,
        "stream": True,
    }
    config = MockServerConfig(model_names=["m-a", "m-b"])
    async with mock_server(config) as (session, base):
        before_s = time.monotonic()
        await post(session, f"{base}/v1/chat/completions", {**CHAT_BODY, "model": "m-a"})
        await post(session, f"{base}/v1/chat/completions", conversation)
        await post(session, f"{base}/v1/completions", {"prompt": ["one two", "three"], "max_tokens": 4})
        await post(session, f"{base}/v1/completions", {"model": "m-a"})  # invalid: not logged
        await post(session, f"{base}/v1/embeddings", {"model": "m-b", "input": ["embed me", "and me"]})
        after_s = time.monotonic()
        log = await get_json(session, f"{base}/mock/requests")

    assert [(seen["endpoint"], seen["model"]) for seen in log] == [
        ("chat", "m-a"),
        ("chat", "m-b"),
        ("completions", "m-a"),
        ("embeddings", "m-b"),
    ]
    arrivals_s = [seen["arrival_s"] for seen in log]
    assert arrivals_s == sorted(arrivals_s)
    assert before_s <= arrivals_s[0] and arrivals_s[-1] <= after_s
    assert [seen["messages_count"] for seen in log] == [2, 4, None, None]
    assert [seen["last_user_text_prefix"] for seen in log] == [
        "say  five words\nplease",
        long_question[:40],
        "one two",
        "embed me",
    ]
    assert [seen["max_tokens"] for seen in log] == [None, 3, 4, None]


async def test_request_log_includes_injected_errors_and_is_emptied_by_reset() -> None:
    async with mock_server(MockServerConfig(error_rate=1.0)) as (session, base):
        await post(session, f"{base}/v1/completions", COMPLETIONS_BODY)
        before = await get_json(session, f"{base}/mock/requests")
        async with session.post(f"{base}/mock/stats/reset") as response:
            assert response.status == 200
        after = await get_json(session, f"{base}/mock/requests")

    assert [seen["last_user_text_prefix"] for seen in before] == ["one two three"]
    assert after == []


async def test_zero_work_streams_fixed_chat_events_whatever_the_body() -> None:
    async with mock_server(MockServerConfig(zero_work=True, ttft_ms=60_000, error_rate=1.0)) as (session, base):
        answers = []
        for body in (
            {**CHAT_BODY, "stream": True, "max_tokens": 3},
            {"model": "not-served", "stream": True},  # neither validated nor paced nor failed
        ):
            answers.append(await post(session, f"{base}/v1/chat/completions", body))
        async with session.post(
            f"{base}/v1/chat/completions", data=b'{"stream": true, "messages": []}', headers={"Content-Type": "x"}
        ) as response:
            spaced = await response.read()
        counters = await stats(session, base)
        log = await get_json(session, f"{base}/mock/requests")

    (status, raw, content_type), (other_status, other_raw, _) = answers
    assert (status, other_status) == (200, 200)
    assert content_type.startswith("text/event-stream")
    assert raw == other_raw == spaced
    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert len(chunks) == 1 + 16 + 1 + 1
    for chunk in chunks:
        assert_chunk_envelope(chunk, "chat.completion.chunk")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:17]]
    assert contents == list(WORDS[:16])
    assert chunks[17]["choices"][0]["finish_reason"] == "length"
    assert chunks[18]["usage"] == {"prompt_tokens": 0, "completion_tokens": 16, "total_tokens": 16}
    assert counters["requests_total"] == 3
    assert counters["errors_injected"] == 0
    assert log == []


async def test_zero_work_answers_completions_and_non_streamed_requests() -> None:
    async with mock_server(MockServerConfig(zero_work=True)) as (session, base):
        _, streamed, _ = await post(session, f"{base}/v1/completions", {**COMPLETIONS_BODY, "stream": True})
        status, full, content_type = await post(session, f"{base}/v1/chat/completions", CHAT_BODY)

    chunks = [json.loads(event) for event in sse_events(streamed)[:-1]]
    assert [chunk["choices"][0]["text"] for chunk in chunks[:16]] == list(WORDS[:16])
    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    assert status == 200
    assert content_type.startswith("application/json")
    result = json.loads(full)
    assert result["choices"][0]["message"]["content"] == "".join(WORDS[:16])
    assert result["usage"]["completion_tokens"] == 16
