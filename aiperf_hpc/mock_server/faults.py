"""Fault injection: which valid requests the mock answers wrongly, and the wrong answers themselves.

One draw from `random.Random(random_seed)` per valid request (only when some error or fault is
configured) picks an injected error status (`error_rate`), one fault (each kind's fraction), or a
normal answer; the regions are laid out in the order error, then `FAULT_KINDS`, so the same seed and
knobs give the same answers in the same arrival order. With several error statuses a second draw picks
among them.

Fault kinds, streamed answer / non-streamed answer (chat, completions, embeddings):

    disconnect  the connection is closed after half the tokens / before any byte of the answer
    truncate    half the tokens, then half of the next SSE event, then close / half the body, then close
    malformed   a `data: {not json` event before the finish chunk / (streams only)
    no-done     the stream ends cleanly without `data: [DONE]` / (streams only)
    stall       half the tokens, then nothing more / nothing at all; until the client leaves
    non-json    a 200 text/plain body that is neither JSON nor SSE, for both

A stream-only kind drawn for a non-streamed request is not injected: the request is answered
normally and not counted. The counts in `/mock/stats` are the faults actually injected.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

from aiohttp import web

FaultKind = Literal["disconnect", "truncate", "malformed", "no-done", "stall", "non-json"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
STREAM_ONLY: frozenset[FaultKind] = frozenset({"malformed", "no-done"})
# Kinds that stop a stream after half its tokens; the others let it run to its end.
CUT_SHORT: frozenset[FaultKind] = frozenset({"disconnect", "truncate", "stall"})

MALFORMED_EVENT = b"data: {not json\n\n"
NOT_JSON_BODY = b"mock-server: this answer is neither JSON nor an event stream\n"
# A stalled answer waits for the client to leave (the server then cancels the handler); the bound
# only keeps an abandoned connection from living forever.
STALL_LIMIT_S = 3600.0


def parse_fault(spec: str) -> tuple[FaultKind, float]:
    """`KIND=FRACTION` as typed after `--fault`; the fraction's range is checked by the config.

    Raises ValueError with a one-line message.
    """
    kind, equals, fraction = spec.partition("=")
    kind = kind.strip()
    for known in FAULT_KINDS:
        if kind == known and equals:
            try:
                return known, float(fraction)
            except ValueError:
                break
    raise ValueError(f"--fault expects KIND=FRACTION (kinds: {', '.join(FAULT_KINDS)}), got {spec!r}")


def parse_statuses(text: str) -> list[int]:
    """`--error-status`: one status or a comma-separated list (`429,503`). Raises ValueError."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--error-status expects a status or a comma-separated list, got {text!r}") from None


class Injector:
    """Draws what each valid request gets (event loop thread only)."""

    def __init__(
        self, error_rate: float, error_statuses: Sequence[int], faults: Mapping[FaultKind, float], seed: int
    ) -> None:
        self._rng = random.Random(seed)
        self._error_rate = error_rate
        self._statuses = list(error_statuses)
        self._faults = [(kind, faults[kind]) for kind in FAULT_KINDS if kind in faults]
        self._active = error_rate > 0 or bool(self._faults)

    def draw(self, streamed: bool) -> int | FaultKind | None:
        """An error status to answer with, a fault to inject, or None for a normal answer."""
        if not self._active:
            return None
        point = self._rng.random()
        if point < self._error_rate:
            return self._statuses[0] if len(self._statuses) == 1 else self._rng.choice(self._statuses)
        bound = self._error_rate
        for kind, fraction in self._faults:
            bound += fraction
            if point < bound:
                return kind if streamed or kind not in STREAM_ONLY else None
        return None


def close_connection(request: web.Request) -> None:
    """Close the request's connection after what was written so far; aiohttp then finds the
    transport closing and ends the response quietly."""
    transport = request.transport
    if transport is not None:
        transport.close()


async def stall() -> None:
    """Send nothing more; the handler is cancelled when the client leaves."""
    await asyncio.sleep(STALL_LIMIT_S)


async def cut_stream_short(
    request: web.Request, response: web.StreamResponse, kind: FaultKind, next_event: bytes
) -> None:
    """End a prepared stream whose first half is written: close it, close it after half of
    `next_event`, or stall."""
    if kind == "truncate":
        await response.write(next_event[: len(next_event) // 2])
    elif kind == "stall":
        await stall()
    close_connection(request)


async def send_faulty_body(request: web.Request, body: bytes, kind: FaultKind) -> web.StreamResponse:
    """A non-streamed answer carrying fault `kind` instead of `body` (the JSON it should have been);
    `non-json` is also the answer to a stream request."""
    response = web.StreamResponse(status=200)
    if kind == "non-json":
        body = NOT_JSON_BODY
        response.content_type = "text/plain"
    else:
        response.content_type = "application/json"
    response.content_length = len(body)
    try:
        if kind == "stall":
            await stall()
        if kind in ("disconnect", "stall"):
            close_connection(request)
            return response
        await response.prepare(request)
        if kind == "truncate":
            await response.write(body[: len(body) // 2])
            close_connection(request)
            return response
        await response.write(body)
        await response.write_eof()
    except ConnectionResetError:
        pass  # The client went away; there is no one left to answer.
    return response
