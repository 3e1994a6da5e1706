from __future__ import annotations

from typing import Any

import orjson
import pytest

from aiperf_hpc.endpoints.response import ParsedResponse, parse_body, parse_stream
from aiperf_hpc.endpoints.sse import SseEvent, parse_sse


def _chat(delta: dict[str, Any], usage: dict[str, int] | None = None) -> str:
    chunk: dict[str, Any] = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    if usage is not None:
        chunk["usage"] = usage
    return orjson.dumps(chunk).decode()


def _text(text: str) -> str:
    return orjson.dumps({"object": "text_completion", "choices": [{"index": 0, "text": text}]}).decode()


def _usage(prompt: int, completion: int) -> str:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return orjson.dumps({"choices": [], "usage": usage}).decode()


def _events(*items: tuple[int, str]) -> list[SseEvent]:
    return [SseEvent(perf_ns, data) for perf_ns, data in items]


def test_chat_stream_counts_content_events_only() -> None:
    events = _events(
        (100, _chat({"role": "assistant", "content": ""})),
        (200, _chat({"content": "Hel"})),
        (300, _chat({"content": "lo"})),
        (350, _chat({})),
        (400, orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).decode()),
        (500, _usage(7, 2)),
        (600, "[DONE]"),
    )
    assert parse_stream("chat", events) == ParsedResponse(
        content_times_ns=[200, 300],
        prompt_tokens=7,
        completion_tokens=2,
        text="Hello",
        error=None,
        error_kind=None,
    )


def test_content_chunks_is_the_number_of_content_events() -> None:
    events = _events((1, _chat({"content": "a"})), (2, _chat({"content": "b"})), (3, "[DONE]"))
    assert parse_stream("chat", events).content_chunks == 2


def test_completions_stream_reads_text() -> None:
    events = _events((10, _text("Once")), (20, _text("")), (30, _text(" upon")), (40, "[DONE]"))
    parsed = parse_stream("completions", events)
    assert parsed.content_times_ns == [10, 30]
    assert parsed.text == "Once upon"
    assert parsed.error is None


def test_endpoint_type_decides_where_content_is_read() -> None:
    events = _events((10, _text("x")), (20, "[DONE]"))
    assert parse_stream("chat", events).content_times_ns == []
    events = _events((10, _chat({"content": "x"})), (20, "[DONE]"))
    assert parse_stream("completions", events).content_times_ns == []


def test_reasoning_content_counts_as_content() -> None:
    events = _events(
        (1, _chat({"reasoning_content": "think"})),
        (2, _chat({"reasoning": " more"})),
        (3, _chat({"reasoning_content": "", "content": "answer"})),
        (4, "[DONE]"),
    )
    parsed = parse_stream("chat", events)
    assert parsed.content_times_ns == [1, 2, 3]
    assert parsed.text == "think moreanswer"


def test_reasoning_sent_under_both_names_is_taken_once() -> None:
    events = _events((1, _chat({"reasoning_content": "r", "reasoning": "r", "content": "c"})), (2, "[DONE]"))
    parsed = parse_stream("chat", events)
    assert parsed.content_times_ns == [1]
    assert parsed.text == "rc"


def test_usage_in_any_chunk_last_one_wins_and_null_does_not_reset() -> None:
    events = _events(
        (1, _chat({"content": "a"}, usage={"prompt_tokens": 5, "completion_tokens": 1})),
        (2, _chat({"content": "b"}, usage={"prompt_tokens": 5, "completion_tokens": 2})),
        (3, orjson.dumps({"choices": [{"delta": {"content": "c"}}], "usage": None}).decode()),
        (4, "[DONE]"),
    )
    parsed = parse_stream("chat", events)
    assert (parsed.prompt_tokens, parsed.completion_tokens) == (5, 2)
    assert parsed.content_times_ns == [1, 2, 3]


def test_no_usage_leaves_token_counts_none() -> None:
    parsed = parse_stream("chat", _events((1, _chat({"content": "a"})), (2, "[DONE]")))
    assert parsed.prompt_tokens is None
    assert parsed.completion_tokens is None


def test_events_after_done_are_ignored() -> None:
    events = _events((1, _chat({"content": "a"})), (2, "[DONE]"), (3, _chat({"content": "b"})), (4, "junk"))
    parsed = parse_stream("chat", events)
    assert parsed.content_times_ns == [1]
    assert parsed.error is None


def test_missing_done_is_an_invalid_response_that_keeps_what_was_read() -> None:
    parsed = parse_stream("chat", _events((1, _chat({"content": "a"})), (2, _usage(3, 1))))
    assert parsed.error == "stream ended without [DONE]"
    assert parsed.error_kind == "invalid_response"
    assert parsed.content_times_ns == [1]
    assert parsed.completion_tokens == 1


def test_a_stream_without_any_event_is_an_invalid_response() -> None:
    parsed = parse_stream("completions", [])
    assert (parsed.error, parsed.error_kind) == ("the streamed response holds no SSE event", "invalid_response")
    assert parsed.content_times_ns == []


def test_a_plain_text_body_is_not_an_event_stream() -> None:
    parsed = parse_stream("chat", parse_sse([(1, b"upstream: bad gateway\n")]))
    assert parsed.error == "the streamed response holds no SSE event"


def test_malformed_json_event_names_its_index_and_stops_parsing() -> None:
    events = _events((1, _chat({"content": "a"})), (2, '{"choices": [}'), (3, _chat({"content": "b"})))
    parsed = parse_stream("chat", events)
    assert parsed.error == "invalid JSON in SSE event 1: '{\"choices\": [}'"
    assert parsed.error_kind == "invalid_response"
    assert parsed.content_times_ns == [1]


def test_json_that_is_not_an_object_is_invalid() -> None:
    parsed = parse_stream("chat", _events((1, "[1, 2]"), (2, "[DONE]")))
    assert parsed.error == "SSE event 0 is not a JSON object: '[1, 2]'"
    assert parsed.error_kind == "invalid_response"


def test_long_malformed_event_is_excerpted() -> None:
    parsed = parse_stream("chat", _events((1, "x" * 1000)))
    assert parsed.error == f"invalid JSON in SSE event 0: {'x' * 200!r}... (1000 chars)"


def test_error_object_in_stream_is_a_server_error_event() -> None:
    error = {"error": {"message": "CUDA out of memory", "type": "InternalServerError", "code": 500}}
    events = _events((1, _chat({"content": "a"})), (2, orjson.dumps(error).decode()), (3, "[DONE]"))
    parsed = parse_stream("chat", events)
    assert parsed.error == "CUDA out of memory"
    assert parsed.error_kind == "server_error_event"
    assert parsed.content_times_ns == [1]


def test_error_as_string_and_without_message() -> None:
    parsed = parse_stream("chat", _events((1, '{"error": "overloaded"}')))
    assert (parsed.error, parsed.error_kind) == ("overloaded", "server_error_event")
    parsed = parse_stream("chat", _events((1, '{"error": {"code": 503}}')))
    assert (parsed.error, parsed.error_kind) == ("'{\"code\":503}'", "server_error_event")


def test_null_error_field_is_not_an_error() -> None:
    events = _events((1, '{"error": null, "choices": [{"text": "a"}]}'), (2, "[DONE]"))
    parsed = parse_stream("completions", events)
    assert parsed.error is None
    assert parsed.text == "a"


def test_sse_error_event_type_is_a_server_error_event() -> None:
    events = [SseEvent(1, '{"message": "rate limited"}', "error")]
    parsed = parse_stream("chat", events)
    assert (parsed.error, parsed.error_kind) == ("rate limited", "server_error_event")


def test_stream_from_raw_chunks_end_to_end() -> None:
    raw = (
        f"data: {_chat({'role': 'assistant', 'content': ''})}\n\n"
        f"data: {_chat({'content': 'caf'})}\n\n"
        f"data: {_chat({'content': 'é!'})}\r\n\r\n"
        f"data: {_usage(11, 2)}\n\n"
        "data: [DONE]\n\n"
    ).encode()
    second = raw.index(b"data:", 1)
    third = raw.index(b"\xc3\xa9") + 1  # inside the two-byte 'é'
    fourth = raw.index(b'{"choices":[]')
    chunks = [(100, raw[:second]), (200, raw[second:third]), (300, raw[third:fourth]), (400, raw[fourth:])]
    parsed = parse_stream("chat", parse_sse(chunks))
    assert parsed == ParsedResponse([200, 200], 11, 2, "café!", None, None)


def test_chat_body() -> None:
    body = orjson.dumps(
        {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"}}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        }
    )
    assert parse_body("chat", body, 12345) == ParsedResponse([12345], 4, 2, "Hi there", None, None)


def test_chat_body_with_reasoning() -> None:
    body = b'{"choices": [{"message": {"reasoning_content": "hmm ", "content": "ok"}}]}'
    parsed = parse_body("chat", body, 9)
    assert parsed.text == "hmm ok"
    assert parsed.content_times_ns == [9]


def test_completions_body() -> None:
    body = b'{"choices": [{"text": "abc", "finish_reason": "length"}], "usage": {"prompt_tokens": 3}}'
    assert parse_body("completions", body, 7) == ParsedResponse([7], 3, None, "abc", None, None)


def test_body_with_empty_content_has_no_content_time() -> None:
    parsed = parse_body("chat", b'{"choices": [{"message": {"content": ""}}]}', 7)
    assert parsed.content_times_ns == []
    assert parsed.text == ""
    assert parsed.error is None


def test_body_invalid_json() -> None:
    parsed = parse_body("chat", b"<html>oops</html>", 7)
    assert parsed.error == "invalid JSON in response body: '<html>oops</html>'"
    assert parsed.error_kind == "invalid_response"
    assert parsed.content_times_ns == []


def test_body_not_an_object() -> None:
    parsed = parse_body("chat", b'"hello"', 7)
    assert parsed.error == "response body is not a JSON object: '\"hello\"'"
    assert parsed.error_kind == "invalid_response"


def test_body_with_error_object() -> None:
    parsed = parse_body("completions", b'{"error": {"message": "bad model", "code": 404}}', 7)
    assert (parsed.error, parsed.error_kind) == ("bad model", "server_error_event")
    assert parsed.content_times_ns == []


def _embeddings_body(count: int, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": [0.1 * i, -0.5, 0.25]} for i in range(count)],
        "model": "e5",
    }
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def test_embeddings_body_reads_prompt_tokens_only() -> None:
    body = _embeddings_body(2, {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 9})
    assert parse_body("embeddings", body, 55) == ParsedResponse([], 9, None, "", None, None)


def test_embeddings_body_without_usage_has_no_token_counts() -> None:
    assert parse_body("embeddings", _embeddings_body(1), 55) == ParsedResponse([], None, None, "", None, None)


def test_embeddings_body_ignores_chat_shaped_content() -> None:
    body = orjson.loads(_embeddings_body(1))
    body["choices"] = [{"message": {"content": "not generated"}}]
    parsed = parse_body("embeddings", orjson.dumps(body), 55)
    assert (parsed.content_times_ns, parsed.text, parsed.error) == ([], "", None)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"object": "list"}', "embeddings response has no 'data' list"),
        (b'{"data": []}', "embeddings response has no 'data' list"),
        (b'{"data": {"embedding": [1.0]}}', "embeddings response has no 'data' list"),
        (b'{"data": [{"embedding": [1.0]}, {"index": 1}]}', "embeddings response 'data[1]' has no 'embedding' list"),
        (b'{"data": [{"embedding": "AAAA"}]}', "embeddings response 'data[0]' has no 'embedding' list"),
        (b'{"data": [[1.0, 2.0]]}', "embeddings response 'data[0]' has no 'embedding' list"),
    ],
)
def test_embeddings_body_without_embeddings_is_invalid(body: bytes, error: str) -> None:
    parsed = parse_body("embeddings", body, 55)
    assert (parsed.error, parsed.error_kind) == (error, "invalid_response")
    assert parsed.content_times_ns == []


def test_embeddings_body_errors_like_other_endpoints() -> None:
    parsed = parse_body("embeddings", b'{"error": {"message": "The model `x` does not exist.", "code": 404}}', 5)
    assert (parsed.error, parsed.error_kind) == ("The model `x` does not exist.", "server_error_event")
    parsed = parse_body("embeddings", b"not json", 5)
    assert (parsed.error, parsed.error_kind) == ("invalid JSON in response body: 'not json'", "invalid_response")
    parsed = parse_body("embeddings", b"[1]", 5)
    assert parsed.error_kind == "invalid_response"


def test_embeddings_are_never_streamed() -> None:
    parsed = parse_stream("embeddings", _events((1, _embeddings_body(1).decode()), (2, "[DONE]")))
    assert (parsed.error, parsed.error_kind) == ("embeddings responses are never streamed", "invalid_response")
    assert parsed.content_times_ns == []
