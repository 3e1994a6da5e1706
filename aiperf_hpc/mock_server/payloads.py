"""Bytes of the mock server's answers, shaped like vLLM's.

Streams are Server-Sent Events, one `data: {json}\\n\\n` event per chunk and `data: [DONE]\\n\\n` last.
The per-request head of every chunk (id, object, created, model) is encoded once per request, and the
per-token tails once per process, so a token chunk costs one bytes concatenation.

Each output token is one word with a leading space, taken in turn from `WORDS`. An embedding is a
unit vector of `EMBEDDING_DIMENSION` floats derived from a hash of its input text, so the same text
always gets the same vector.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

from aiperf_hpc.mock_server.parsing import Endpoint, EndpointKind, FinishReason

WORDS: tuple[str, ...] = (
    " the", " quick", " brown", " fox", " jumps", " over", " a", " lazy",
    " dog", " while", " seven", " wizards", " quietly", " hex", " every", " bolt",
)  # fmt: skip

DONE_EVENT = b"data: [DONE]\n\n"
EMBEDDING_DIMENSION = 8

_OBJECT_STREAM: dict[EndpointKind, str] = {"chat": "chat.completion.chunk", "completions": "text_completion"}
_OBJECT_FULL: dict[EndpointKind, str] = {"chat": "chat.completion", "completions": "text_completion"}
_ID_PREFIX: dict[Endpoint, str] = {"chat": "chatcmpl-mock-", "completions": "cmpl-mock-", "embeddings": "embd-mock-"}


def _choice_tail(choice: dict[str, Any]) -> bytes:
    return b"[" + orjson.dumps(choice) + b"]}\n\n"


_TOKEN_TAILS: dict[EndpointKind, tuple[bytes, ...]] = {
    "chat": tuple(
        _choice_tail({"index": 0, "delta": {"content": w}, "logprobs": None, "finish_reason": None}) for w in WORDS
    ),
    "completions": tuple(_choice_tail({"index": 0, "text": w, "logprobs": None, "finish_reason": None}) for w in WORDS),
}
_ROLE_TAIL = _choice_tail(
    {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
)
_FINISH_TAILS: dict[tuple[EndpointKind, FinishReason], bytes] = {
    ("chat", reason): _choice_tail({"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason})
    for reason in ("length", "stop")
} | {
    ("completions", reason): _choice_tail({"index": 0, "text": "", "logprobs": None, "finish_reason": reason})
    for reason in ("length", "stop")
}


def response_id(endpoint: Endpoint, sequence: int) -> str:
    return f"{_ID_PREFIX[endpoint]}{sequence}"


def output_text(output_tokens: int) -> str:
    """The concatenated text of the first `output_tokens` tokens."""
    cycles, rest = divmod(output_tokens, len(WORDS))
    return "".join(WORDS) * cycles + "".join(WORDS[:rest])


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class StreamChunks:
    """The SSE events of one streamed response."""

    __slots__ = ("_head", "_kind", "_token_tails")

    def __init__(self, kind: EndpointKind, id_: str, created_s: int, model: str) -> None:
        self._kind: EndpointKind = kind
        self._token_tails = _TOKEN_TAILS[kind]
        self._head = (
            b'data: {"id":'
            + orjson.dumps(id_)
            + b',"object":"'
            + _OBJECT_STREAM[kind].encode()
            + b'","created":'
            + str(created_s).encode()
            + b',"model":'
            + orjson.dumps(model)
            + b',"choices":'
        )

    def role(self) -> bytes:
        """Chat only: the opening chunk that carries the assistant role and no content."""
        return self._head + _ROLE_TAIL

    def token(self, index: int) -> bytes:
        return self._head + self._token_tails[index % len(self._token_tails)]

    def finish(self, reason: FinishReason) -> bytes:
        return self._head + _FINISH_TAILS[(self._kind, reason)]

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return self._head + b'[],"usage":' + orjson.dumps(_usage(prompt_tokens, completion_tokens)) + b"}\n\n"


def full_response(
    kind: EndpointKind,
    id_: str,
    created_s: int,
    model: str,
    output_tokens: int,
    finish_reason: FinishReason,
    prompt_tokens: int,
    with_usage: bool = True,
) -> bytes:
    """The JSON body of a non-streamed chat.completion or text_completion; without `usage` when
    `with_usage` is False."""
    text = output_text(output_tokens)
    choice: dict[str, Any] = (
        {"index": 0, "message": {"role": "assistant", "content": text}}
        if kind == "chat"
        else {"index": 0, "text": text}
    )
    choice["logprobs"] = None
    choice["finish_reason"] = finish_reason
    body: dict[str, Any] = {
        "id": id_,
        "object": _OBJECT_FULL[kind],
        "created": created_s,
        "model": model,
        "choices": [choice],
    }
    if with_usage:
        body["usage"] = _usage(prompt_tokens, output_tokens)
    return orjson.dumps(body)


def embedding_vector(text: str) -> list[float]:
    """The unit vector of `EMBEDDING_DIMENSION` floats the mock answers for `text`."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=2 * EMBEDDING_DIMENSION).digest()
    # Each pair of bytes maps to [-1, 1]; the +0.5 keeps every component non-zero, so the norm is too.
    raw = [(int.from_bytes(digest[i : i + 2], "big") + 0.5) / 32768.0 - 1.0 for i in range(0, len(digest), 2)]
    norm = math.sqrt(sum(value * value for value in raw))
    return [value / norm for value in raw]


def embeddings_body(id_: str, created_s: int, model: str, inputs: list[str], prompt_tokens: int | None) -> bytes:
    """The JSON body of an embeddings answer, one embedding per input in order; without `usage` when
    `prompt_tokens` is None."""
    body: dict[str, Any] = {
        "id": id_,
        "object": "list",
        "created": created_s,
        "model": model,
        "data": [
            {"object": "embedding", "index": index, "embedding": embedding_vector(text)}
            for index, text in enumerate(inputs)
        ],
    }
    if prompt_tokens is not None:
        body["usage"] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return orjson.dumps(body)


def error_body(status: int, message: str, error_type: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": error_type, "code": status}})


def models_body(model_names: list[str], created_s: int) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": created_s, "owned_by": "aiperf-hpc-mock"}
                for name in model_names
            ],
        }
    )
