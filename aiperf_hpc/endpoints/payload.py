"""Request bodies for the OpenAI-compatible endpoints, built from plain values.

The same function builds what a worker sends and what `inputs.json` records, so the file shows the
exact bytes' content that went over the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from aiperf_hpc.config import EndpointType

HISTORY_SEPARATOR = "\n"


def build_payload(
    endpoint_type: EndpointType,
    model: str,
    prompt: str,
    max_tokens: int | None,
    streaming: bool,
    extra_inputs: Mapping[str, Any],
    history: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The JSON body of one request.

    `history` holds the conversation's earlier turns as (user prompt, assistant answer) pairs, oldest
    first. Chat sends them as alternating user/assistant messages before `prompt`. Completions has no
    roles, so its prompt is every earlier prompt and answer followed by `prompt`, joined with
    `HISTORY_SEPARATOR`. Embeddings ignore `history`, `max_tokens` and `streaming` (they are never
    streamed): the body is `{"model", "input": prompt}`.

    `max_tokens` is left out when None, so the server's default applies. A streaming request also asks
    for `stream_options.include_usage`, so the server reports token counts in its last chunk.
    `extra_inputs` are merged last and shallowly: a top-level key given there replaces ours whole
    (e.g. `stream_options`).
    """
    payload: dict[str, Any] = {"model": model}
    if endpoint_type == "embeddings":
        payload["input"] = prompt
        payload.update(extra_inputs)
        return payload
    if endpoint_type == "chat":
        messages: list[dict[str, str]] = []
        for user_text, assistant_text in history:
            messages.append({"role": "user", "content": user_text})
            messages.append({"role": "assistant", "content": assistant_text})
        messages.append({"role": "user", "content": prompt})
        payload["messages"] = messages
    else:
        texts = [text for pair in history for text in pair]
        texts.append(prompt)
        payload["prompt"] = HISTORY_SEPARATOR.join(texts)
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    payload["stream"] = streaming
    if streaming:
        payload["stream_options"] = {"include_usage": True}
    payload.update(extra_inputs)
    return payload


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON bytes of a payload; raises `orjson.JSONEncodeError` for values JSON cannot hold."""
    return orjson.dumps(payload)
