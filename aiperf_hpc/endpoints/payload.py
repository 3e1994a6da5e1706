"""Request bodies for the OpenAI-compatible endpoints, built from plain values.

The same function builds what a worker sends and what `inputs.json` records, so the file shows the
exact bytes' content that went over the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from aiperf_hpc.config import EndpointType


def build_payload(
    endpoint_type: EndpointType,
    model: str,
    prompt: str,
    max_tokens: int | None,
    streaming: bool,
    extra_inputs: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON body of one request.

    `max_tokens` is left out when None, so the server's default applies. A streaming request also asks
    for `stream_options.include_usage`, so the server reports token counts in its last chunk.
    `extra_inputs` are merged last and shallowly: a top-level key given there replaces ours whole
    (e.g. `stream_options`).
    """
    payload: dict[str, Any] = {"model": model}
    if endpoint_type == "chat":
        payload["messages"] = [{"role": "user", "content": prompt}]
    else:
        payload["prompt"] = prompt
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
