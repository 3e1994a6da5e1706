"""What a response said: content timings, token usage, text and errors.

Works on already-split SSE events (`sse.parse_sse`) or on a whole non-streaming body. Payloads are
read with `orjson.loads` and plain dict access; no pydantic model per event, since this runs once per
request over possibly thousands of events.

Where content is read from:

- chat: `choices[0].delta` (streaming) or `choices[0].message` (non-streaming): `content`, plus
  reasoning from `reasoning_content`, else `reasoning` (servers that send both send the same text);
- completions: `choices[0].text`;
- embeddings: nothing is generated; a body succeeds when `data` is a non-empty list of objects that
  each carry an `embedding` list. Only `usage.prompt_tokens` is read. Embeddings are never streamed.

Reasoning text counts as generated content, both for timing and for `text`, since servers count it in
`usage.completion_tokens` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from aiperf_hpc.config import EndpointType
from aiperf_hpc.endpoints.sse import SseEvent

ResponseErrorKind = Literal["invalid_response", "server_error_event"]

_DONE = "[DONE]"
_EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    """`content_times_ns` holds the perf_counter time of each event (or body) that carried non-empty
    generated content. Token counts come from the last `usage` object seen, None when there was none.
    `error` is set for a malformed response or a server error reported inside a 2xx response."""

    content_times_ns: list[int]
    prompt_tokens: int | None
    completion_tokens: int | None
    text: str
    error: str | None = None
    error_kind: ResponseErrorKind | None = None

    @property
    def content_chunks(self) -> int:
        return len(self.content_times_ns)


def parse_stream(endpoint_type: EndpointType, events: Sequence[SseEvent]) -> ParsedResponse:
    """Read a streamed response up to `data: [DONE]`; events after it are ignored.

    Events without content (the role chunk, the finish chunk, a usage chunk with `choices: []`) are
    legal and not counted. The first problem ends parsing and sets `error`; what was read before it
    is kept. N in "SSE event N" is the event's index in `events`, counting from 0. Embeddings are
    never streamed (read them with `parse_body`): for them the result is an `invalid_response` error.
    """
    times_ns: list[int] = []
    pieces: list[str] = []
    usage = _Usage()
    if endpoint_type == "embeddings":
        return usage.result(times_ns, pieces, "embeddings responses are never streamed", "invalid_response")
    if not events:  # an empty body, or one that is not an event stream (plain text, a JSON object)
        return usage.result(times_ns, pieces, "the streamed response holds no SSE event", "invalid_response")
    for index, event in enumerate(events):
        if event.data.strip() == _DONE:
            return usage.result(times_ns, pieces)
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            message = f"invalid JSON in SSE event {index}: {_excerpt(event.data)}"
            return usage.result(times_ns, pieces, message, "invalid_response")
        if not isinstance(payload, dict):
            message = f"SSE event {index} is not a JSON object: {_excerpt(event.data)}"
            return usage.result(times_ns, pieces, message, "invalid_response")
        server_error = _server_error(payload, event)
        if server_error is not None:
            return usage.result(times_ns, pieces, server_error, "server_error_event")
        usage.read(payload)
        text = _content(endpoint_type, payload, "delta")
        if text:
            times_ns.append(event.perf_ns)
            pieces.append(text)
    return usage.result(times_ns, pieces, "stream ended without [DONE]", "invalid_response")


def parse_body(endpoint_type: EndpointType, body: bytes, received_perf_ns: int) -> ParsedResponse:
    """Read a non-streaming JSON response that was fully received at `received_perf_ns`.

    An embeddings body has no content: `content_times_ns` is empty, `text` is "" and
    `completion_tokens` None whatever its usage says.
    """
    usage = _Usage()
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        message = f"invalid JSON in response body: {_excerpt(body.decode('utf-8', errors='replace'))}"
        return usage.result([], [], message, "invalid_response")
    if not isinstance(payload, dict):
        message = f"response body is not a JSON object: {_excerpt(body.decode('utf-8', errors='replace'))}"
        return usage.result([], [], message, "invalid_response")
    server_error = _server_error(payload, None)
    if server_error is not None:
        return usage.result([], [], server_error, "server_error_event")
    usage.read(payload)
    if endpoint_type == "embeddings":
        usage.completion_tokens = None
        problem = _embeddings_problem(payload)
        if problem is not None:
            return usage.result([], [], problem, "invalid_response")
        return usage.result([], [])
    content = _content(endpoint_type, payload, "message")
    if not content:
        return usage.result([], [])
    return usage.result([received_perf_ns], [content])


class _Usage:
    """The token counts of the last `usage` object seen (`"usage": null` chunks do not reset them)."""

    __slots__ = ("completion_tokens", "prompt_tokens")

    def __init__(self) -> None:
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def read(self, payload: dict[str, Any]) -> None:
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
            self.completion_tokens = _int_or_none(usage.get("completion_tokens"))

    def result(
        self,
        times_ns: list[int],
        pieces: list[str],
        error: str | None = None,
        error_kind: ResponseErrorKind | None = None,
    ) -> ParsedResponse:
        return ParsedResponse(
            content_times_ns=times_ns,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            text="".join(pieces),
            error=error,
            error_kind=error_kind,
        )


def _content(endpoint_type: EndpointType, payload: dict[str, Any], chat_field: str) -> str:
    """The generated text in `choices[0]`, "" when there is none or the shape is not the expected one."""
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        return ""
    choice = choices[0]
    if not isinstance(choice, dict):
        return ""
    if endpoint_type == "completions":
        return _str_or_empty(choice.get("text"))
    message = choice.get(chat_field)
    if not isinstance(message, dict):
        return ""
    reasoning = _str_or_empty(message.get("reasoning_content")) or _str_or_empty(message.get("reasoning"))
    return reasoning + _str_or_empty(message.get("content"))


def _embeddings_problem(payload: dict[str, Any]) -> str | None:
    """Why an embeddings body is not one, else None."""
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        return "embeddings response has no 'data' list"
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("embedding"), list):
            return f"embeddings response 'data[{index}]' has no 'embedding' list"
    return None


def _server_error(payload: dict[str, Any], event: SseEvent | None) -> str | None:
    """The message of an `error` object in the payload (or of an `event: error` event), else None."""
    error = payload.get("error")
    if error is None and event is not None and event.event == "error":
        error = payload
    if not error:  # absent, null, false, "" or {}: servers send `"error": null` on healthy chunks
        return None
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
        return _excerpt(orjson.dumps(error).decode())
    if isinstance(error, str):
        return error
    return _excerpt(orjson.dumps(error).decode())


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_empty(value: object) -> str:
    return value if isinstance(value, str) else ""


def _excerpt(text: str) -> str:
    if len(text) <= _EXCERPT_CHARS:
        return repr(text)
    return repr(text[:_EXCERPT_CHARS]) + f"... ({len(text)} chars)"
