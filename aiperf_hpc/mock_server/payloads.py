"""Bytes of the mock server's answers, shaped like vLLM's.

Streams are Server-Sent Events, one `data: {json}\\n\\n` event per chunk and `data: [DONE]\\n\\n` last.
The per-request head of every chunk (id, object, created, model) is encoded once per request, and the
per-token tails once per process, so a token chunk costs one bytes concatenation.

Each output token is one word with a leading space, taken in turn from `WORDS`.
"""

from __future__ import annotations

from typing import Any

import orjson

from aiperf_hpc.mock_server.parsing import EndpointKind, FinishReason

WORDS: tuple[str, ...] = (
    " the", " quick", " brown", " fox", " jumps", " over", " a", " lazy",
    " dog", " while", " seven", " wizards", " quietly", " hex", " every", " bolt",
)  # fmt: skip

DONE_EVENT = b"data: [DONE]\n\n"

_OBJECT_STREAM: dict[EndpointKind, str] = {"chat": "chat.completion.chunk", "completions": "text_completion"}
_OBJECT_FULL: dict[EndpointKind, str] = {"chat": "chat.completion", "completions": "text_completion"}
_ID_PREFIX: dict[EndpointKind, str] = {"chat": "chatcmpl-mock-", "completions": "cmpl-mock-"}


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


def response_id(kind: EndpointKind, sequence: int) -> str:
    return f"{_ID_PREFIX[kind]}{sequence}"


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
) -> bytes:
    """The JSON body of a non-streamed chat.completion or text_completion."""
    text = output_text(output_tokens)
    choice: dict[str, Any] = (
        {"index": 0, "message": {"role": "assistant", "content": text}}
        if kind == "chat"
        else {"index": 0, "text": text}
    )
    choice["logprobs"] = None
    choice["finish_reason"] = finish_reason
    return orjson.dumps(
        {
            "id": id_,
            "object": _OBJECT_FULL[kind],
            "created": created_s,
            "model": model,
            "choices": [choice],
            "usage": _usage(prompt_tokens, output_tokens),
        }
    )


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
