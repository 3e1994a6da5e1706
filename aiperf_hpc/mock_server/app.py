"""The mock server's aiohttp application: OpenAI-compatible routes plus the `/mock/...` truth.

Routes:
    POST /v1/chat/completions, POST /v1/completions   generation, streamed (SSE) or not
    POST /v1/embeddings                                embeddings (never streamed), see payloads.py
    GET  /v1/models                                    the configured model names
    GET  /health                                       200 "ok"
    GET  /mock/stats[?wait_idle_s=S]                   ground truth counters (see truth.py); with
                                                       wait_idle_s, answers once no request is in
                                                       flight or after S seconds, whichever is first
    GET  /mock/requests                                the log of recent valid requests (truth.py)
    GET  /metrics                                      vLLM's Prometheus metrics (prometheus.py),
                                                       from the same counters as /mock/stats
    POST /mock/stats/reset                             zero the counters and empty the log

Injected error statuses and faults (disconnects, truncated or malformed streams, stalls, bodies that are
not JSON) are drawn per valid request as faults.py describes; /mock/stats counts each.

With `zero_work` the generation routes answer fixed bytes instead (zero_work.py): no validation, no
pacing, no error or fault injection and no request log; the counters of /mock/stats still count.

Pacing: the first content token is due `ttft_ms` after the handler starts, token k (from 0) at
`start + ttft + k * itl`. Chunks that are due are written together, so a zero-latency stream is one
write, and a stream that fell behind catches up in one burst instead of drifting. A chat stream's role
chunk waits for the first token, as vLLM's does. An embeddings answer is due `ttft_ms` after the
handler starts. What the mock really did (its TTFT and ITL from the times of its writes) is in
/mock/stats as `actual_ttft_ms` and `actual_itl_ms` (truth.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from typing import Any

import orjson
from aiohttp import web

from aiperf_hpc.mock_server.config import MockServerConfig
from aiperf_hpc.mock_server.faults import (
    CUT_SHORT,
    MALFORMED_EVENT,
    FaultKind,
    Injector,
    cut_stream_short,
    send_faulty_body,
)
from aiperf_hpc.mock_server.pacing import sleep_until
from aiperf_hpc.mock_server.parsing import (
    EmbeddingsRequest,
    Endpoint,
    GenerationRequest,
    InvalidRequest,
    parse_embeddings_request,
    parse_generation_request,
)
from aiperf_hpc.mock_server.payloads import (
    DONE_EVENT,
    StreamChunks,
    embeddings_body,
    error_body,
    full_response,
    models_body,
    response_id,
)
from aiperf_hpc.mock_server.prometheus import CONTENT_TYPE as METRICS_CONTENT_TYPE
from aiperf_hpc.mock_server.prometheus import VllmMetrics
from aiperf_hpc.mock_server.truth import TEXT_PREFIX_CHARS, MockStats, RequestSeen
from aiperf_hpc.mock_server.zero_work import build_zero_work_bodies, wants_stream

# Prompts of long synthetic inputs exceed aiohttp's 1 MiB default body limit.
_MAX_BODY_BYTES = 64 * 1024 * 1024
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


class _MockHandlers:
    """Request handlers sharing one config, one stats object and one injector (event loop thread only)."""

    def __init__(self, config: MockServerConfig) -> None:
        self._config = config
        self._stats = MockStats()
        self._injector = Injector(config.error_rate, config.error_statuses, config.faults, config.random_seed)
        self._sequence = itertools.count()
        self._ttft_s = config.ttft_ms / 1000.0
        self._itl_s = config.itl_ms / 1000.0
        self._paced = config.ttft_ms > 0 or config.itl_ms > 0
        self._metrics = VllmMetrics(self._stats, config.model_names[0], self._ttft_s, self._itl_s)
        self._models_body = models_body(config.model_names, int(time.time()))
        model = config.model_names[0]
        self._zero_work_chat = build_zero_work_bodies("chat", model)
        self._zero_work_completions = build_zero_work_bodies("completions", model)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "chat")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "completions")

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "embeddings")

    async def chat_zero_work(self, request: web.Request) -> web.StreamResponse:
        bodies = self._zero_work_chat
        return await self._serve_fixed(request, bodies.stream, bodies.full)

    async def completions_zero_work(self, request: web.Request) -> web.StreamResponse:
        bodies = self._zero_work_completions
        return await self._serve_fixed(request, bodies.stream, bodies.full)

    async def models(self, request: web.Request) -> web.Response:
        return web.Response(body=self._models_body, content_type="application/json")

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        raw_wait = request.query.get("wait_idle_s")
        if raw_wait is not None:
            wait_s = _non_negative_float(raw_wait)
            if wait_s is None:
                message = f"'wait_idle_s' must be a non-negative number of seconds, got {raw_wait!r}"
                body = error_body(400, message, "BadRequestError")
                return web.Response(body=body, status=400, content_type="application/json")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stats.wait_idle(), timeout=wait_s)
        return web.json_response(self._truth())

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def requests(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self._stats.requests()), content_type="application/json")

    async def reset_stats(self, request: web.Request) -> web.Response:
        self._stats.reset()
        self._metrics.reset()
        return web.json_response(self._truth())

    def _truth(self) -> dict[str, Any]:
        return {**self._stats.snapshot(self._config.ttft_ms, self._config.itl_ms), **self._metrics.truth()}

    async def _serve(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        arrived_s = time.perf_counter()
        arrived_monotonic_s = time.monotonic()
        self._stats.on_arrival()
        try:
            body = await request.read()
            parsed: GenerationRequest | EmbeddingsRequest
            try:
                if endpoint == "embeddings":
                    parsed = parse_embeddings_request(body, self._config.model_names)
                else:
                    parsed = parse_generation_request(
                        endpoint, body, self._config.model_names, self._config.default_output_tokens
                    )
            except InvalidRequest as exc:
                return await _send_json(request, exc.status, error_body(exc.status, exc.message, exc.error_type))
            self._stats.on_request_seen(_seen(endpoint, arrived_monotonic_s, parsed))
            streamed = isinstance(parsed, GenerationRequest) and parsed.stream
            injected = self._injector.draw(streamed)
            fault: FaultKind | None = None
            if isinstance(injected, int):
                self._stats.on_error_injected(injected)
                body = error_body(injected, "Error injected by the mock server", "MockInjectedError")
                return await _send_json(request, injected, body)
            if injected is not None:
                self._stats.on_fault_injected(injected)
                fault = injected
            if isinstance(parsed, EmbeddingsRequest):
                return await self._embed(request, parsed, arrived_s, fault)
            with self._metrics.generating(parsed):
                if not parsed.stream:
                    return await self._complete(request, parsed, arrived_s, fault)
                if fault == "non-json":
                    return await send_faulty_body(request, b"", fault)
                return await self._stream(request, parsed, arrived_s, fault)
        finally:
            self._stats.on_departure()

    async def _serve_fixed(self, request: web.Request, stream_body: bytes, full_body: bytes) -> web.StreamResponse:
        """A zero-work answer: the body is read (so keep-alive works) and searched, never decoded."""
        self._stats.on_arrival()
        try:
            if wants_stream(await request.read()):
                response = web.Response(body=stream_body, headers=_SSE_HEADERS)
            else:
                response = web.Response(body=full_body, content_type="application/json")
            try:
                await response.prepare(request)
                await response.write_eof()
            except ConnectionResetError:
                pass  # The client went away; there is no one left to answer.
            return response
        finally:
            self._stats.on_departure()

    async def _stream(
        self, request: web.Request, parsed: GenerationRequest, arrived_s: float, fault: FaultKind | None
    ) -> web.StreamResponse:
        """A stream of `parsed.output_tokens` tokens, or of half of them when `fault` cuts it short.

        A chat stream's role chunk goes out with the first token, as vLLM sends it; only the headers
        go out on arrival. A stream that ends as asked reports its real token times to the stats."""
        kind = parsed.kind
        chunks = StreamChunks(kind, response_id(kind, next(self._sequence)), int(time.time()), parsed.model)
        pending = [chunks.role()] if kind == "chat" else []
        tokens = parsed.output_tokens // 2 if fault in CUT_SHORT else parsed.output_tokens
        first_token_s: float | None = None
        response = web.StreamResponse(headers=_SSE_HEADERS)
        try:
            await response.prepare(request)
            if self._paced:
                first_deadline_s = arrived_s + self._ttft_s
                for index in range(tokens):
                    deadline_s = first_deadline_s + index * self._itl_s
                    if time.perf_counter() < deadline_s:
                        if index > 0:  # pending holds token 0 onwards; before it, only the role chunk
                            written_s = await _write(response, pending)
                            first_token_s = written_s if first_token_s is None else first_token_s
                        await sleep_until(deadline_s)
                    pending.append(chunks.token(index))
            else:
                pending.extend(chunks.token(index) for index in range(tokens))
            if fault is not None and fault in CUT_SHORT:
                await _write(response, pending)
                await cut_stream_short(request, response, fault, chunks.token(tokens))
                return response
            if fault == "malformed":
                pending.append(MALFORMED_EVENT)
            pending.append(chunks.finish(parsed.finish_reason))
            if parsed.include_usage and self._config.send_usage:
                pending.append(chunks.usage(parsed.prompt_tokens, parsed.output_tokens))
            if fault != "no-done":
                pending.append(DONE_EVENT)
            if fault is None:
                self._metrics.on_finished(parsed, time.perf_counter() - arrived_s)
            last_token_s = await _write(response, pending)
            await response.write_eof()
            if fault is None and tokens > 0:
                first_token_s = last_token_s if first_token_s is None else first_token_s
                self._stats.on_stream_written(arrived_s, first_token_s, last_token_s, tokens)
        except ConnectionResetError:
            pass  # The client went away; there is no one left to answer.
        return response

    async def _complete(
        self, request: web.Request, parsed: GenerationRequest, arrived_s: float, fault: FaultKind | None
    ) -> web.StreamResponse:
        if self._paced:
            await sleep_until(arrived_s + self._ttft_s + (parsed.output_tokens - 1) * self._itl_s)
        id_ = response_id(parsed.kind, next(self._sequence))
        body = full_response(
            parsed.kind,
            id_,
            int(time.time()),
            parsed.model,
            parsed.output_tokens,
            parsed.finish_reason,
            parsed.prompt_tokens,
            with_usage=self._config.send_usage,
        )
        if fault is None:
            self._metrics.on_finished(parsed, time.perf_counter() - arrived_s)
        return await _send_answer(request, body, fault)

    async def _embed(
        self, request: web.Request, parsed: EmbeddingsRequest, arrived_s: float, fault: FaultKind | None
    ) -> web.StreamResponse:
        if self._paced:
            await sleep_until(arrived_s + self._ttft_s)
        id_ = response_id("embeddings", next(self._sequence))
        prompt_tokens = parsed.prompt_tokens if self._config.send_usage else None
        body = embeddings_body(id_, int(time.time()), parsed.model, parsed.inputs, prompt_tokens)
        return await _send_answer(request, body, fault)


def _seen(endpoint: Endpoint, arrival_s: float, parsed: GenerationRequest | EmbeddingsRequest) -> RequestSeen:
    if isinstance(parsed, EmbeddingsRequest):
        return RequestSeen(endpoint, arrival_s, parsed.model, None, parsed.inputs[0][:TEXT_PREFIX_CHARS], None)
    return RequestSeen(
        endpoint,
        arrival_s,
        parsed.model,
        parsed.messages_count,
        parsed.last_user_text[:TEXT_PREFIX_CHARS],
        parsed.requested_tokens,
    )


def _non_negative_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


async def _write(response: web.StreamResponse, pending: list[bytes]) -> float:
    """Write the `pending` events as one write and empty the list; returns `perf_counter()` just
    before the bytes were handed to the transport (nothing is written when there are none)."""
    written_s = time.perf_counter()
    if pending:
        await response.write(b"".join(pending))
        pending.clear()
    return written_s


async def _send_json(request: web.Request, status: int, body: bytes) -> web.StreamResponse:
    """Write the whole response before returning, so the in-flight count covers the write."""
    response = web.Response(body=body, status=status, content_type="application/json")
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionResetError:
        pass  # The client went away; there is no one left to answer.
    return response


async def _send_answer(request: web.Request, body: bytes, fault: FaultKind | None) -> web.StreamResponse:
    """A non-streamed 200 answer: `body`, or what fault `fault` makes of it."""
    if fault is None:
        return await _send_json(request, 200, body)
    return await send_faulty_body(request, body, fault)


def create_app(config: MockServerConfig) -> web.Application:
    """Build the mock server application; all state lives in the returned app."""
    handlers = _MockHandlers(config)
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    if config.zero_work:
        app.router.add_post("/v1/chat/completions", handlers.chat_zero_work)
        app.router.add_post("/v1/completions", handlers.completions_zero_work)
    else:
        app.router.add_post("/v1/chat/completions", handlers.chat)
        app.router.add_post("/v1/completions", handlers.completions)
    app.router.add_post("/v1/embeddings", handlers.embeddings)
    app.router.add_get("/v1/models", handlers.models)
    app.router.add_get("/health", handlers.health)
    app.router.add_get("/mock/stats", handlers.stats)
    app.router.add_get("/mock/requests", handlers.requests)
    app.router.add_post("/mock/stats/reset", handlers.reset_stats)
    app.router.add_get("/metrics", handlers.metrics)
    return app
