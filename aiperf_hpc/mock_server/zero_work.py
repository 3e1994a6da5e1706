"""The zero-work answers: fixed bytes built once per process, to measure a client's own ceiling.

With `MockServerConfig.zero_work` the generation endpoints skip validation, pacing, error injection
and the request log. The body is read (the connection must stay usable) but not decoded: one
regular-expression search decides streamed or not. A streamed answer is the SSE events of a chat or
completions stream of `ZERO_WORK_TOKENS` tokens (role chunk for chat, the tokens, a finish chunk, a
usage chunk, `[DONE]`), sent with its length in one write; a non-streamed answer is the matching JSON
body. The model named in the answers is the first served model, whatever the request asked for, and
usage reports `ZERO_WORK_PROMPT_TOKENS` prompt tokens. What is left per request is aiohttp's own
request handling, which is the floor of any aiohttp server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiperf_hpc.mock_server.parsing import EndpointKind
from aiperf_hpc.mock_server.payloads import DONE_EVENT, StreamChunks, full_response, response_id

ZERO_WORK_TOKENS = 16
ZERO_WORK_PROMPT_TOKENS = 0
# The created timestamp of every zero-work answer: fixed, so the bytes never change.
_CREATED_S = 0
# `"stream": true` as JSON encoders write it, with or without spaces around the colon.
_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')


@dataclass(frozen=True, slots=True)
class ZeroWorkBodies:
    """The two answers of one generation endpoint: the SSE stream and the JSON body."""

    stream: bytes
    full: bytes


def build_zero_work_bodies(kind: EndpointKind, model: str) -> ZeroWorkBodies:
    """The fixed answers of endpoint `kind`, naming `model`."""
    chunks = StreamChunks(kind, response_id(kind, 0), _CREATED_S, model)
    events = [chunks.role()] if kind == "chat" else []
    events.extend(chunks.token(index) for index in range(ZERO_WORK_TOKENS))
    events.append(chunks.finish("length"))
    events.append(chunks.usage(ZERO_WORK_PROMPT_TOKENS, ZERO_WORK_TOKENS))
    events.append(DONE_EVENT)
    full = full_response(
        kind, response_id(kind, 0), _CREATED_S, model, ZERO_WORK_TOKENS, "length", ZERO_WORK_PROMPT_TOKENS
    )
    return ZeroWorkBodies(stream=b"".join(events), full=full)


def wants_stream(body: bytes) -> bool:
    """Whether a request body asks for a streamed answer, without decoding the JSON."""
    return _STREAM_TRUE.search(body) is not None
