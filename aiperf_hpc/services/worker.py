"""Worker: turns credits into HTTP requests and every request into exactly one record.

On configure it fetches the dataset once, pre-encodes every first-turn request body, opens one
transport (`runtime.transport`: one aiohttp session, keep-alive, one connector) and tells the timing
manager how many slots it has. Each `CreditDrop` becomes one task that runs the request path
(`RequestRunner`): credit -> payload -> transport -> parse -> record. It waits for the credit's due
time (rate and trace modes), sends, gets the response back whole with every received piece stamped
at its arrival (by the transport, when aiohttp received it, not when the reading task got to it),
parses after the response ended (never per chunk), and the worker pushes the record and returns the
credit.

Two things keep the worker's own delays out of what it measures. A request's send time is when the
transport handed its bytes to the connection, not when the task decided to send (`HttpRequest`).
And finished responses are parsed one per event-loop turn (`_finishing`): at high concurrency many
streams end together, and parsing them all in one turn would hold back the stamps of every chunk
that arrives meanwhile by milliseconds. Failures become records with an `error_type`; they never
escape the task. Multi-turn conversations keep their history here: the timing manager sends every
turn of a conversation to the worker that ran its first turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from aiperf_hpc.config import RunConfig
from aiperf_hpc.dataset.tokenizer import Tokenizer, load_tokenizer
from aiperf_hpc.endpoints.payload import build_payload, encode_payload
from aiperf_hpc.endpoints.response import ParsedResponse, parse_body, parse_stream
from aiperf_hpc.endpoints.sse import parse_sse
from aiperf_hpc.errors import ConnectionFailed, RequestTimeout
from aiperf_hpc.protocol.messages import (
    CancelCredits,
    Configure,
    Conversation,
    CreditDrop,
    CreditReturn,
    ErrorType,
    Message,
    RecordBatch,
    RequestRecord,
    TokenSource,
    Turn,
    WorkerHealth,
    WorkerReady,
)
from aiperf_hpc.runtime.bus import Bus, describe, send
from aiperf_hpc.runtime.clock import SYSTEM_CLOCK, Clock
from aiperf_hpc.runtime.service import Service
from aiperf_hpc.runtime.transport import AiohttpTransport, HttpRequest, HttpResponse, Transport
from aiperf_hpc.runtime.wall_timer import WallTimer
from aiperf_hpc.services.dataset_client import fetch_conversations

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 1.0
_ERROR_BODY_CHARS = 300


UNCAPPED_SLOTS = 1000  # per worker, when nothing caps what is in flight (rate and trace modes)


def slots_per_worker(max_in_flight: int | None, workers: int) -> int:
    """Room each worker offers: its share of the in-flight cap, so the total covers it."""
    if max_in_flight is None:
        return UNCAPPED_SLOTS
    return max(1, math.ceil(max_in_flight / workers))


def open_transport(config: RunConfig, slots: int) -> Transport:
    """The real transport of a run: aiohttp, at most `slots` connections, the run's request timeout."""
    return AiohttpTransport(slots, config.endpoint.request_timeout_s)


class Worker(Service):
    service_type = "worker"
    measures_clock = True

    def __init__(
        self,
        *,
        service_id: str,
        control_address: str,
        bus: Bus,
        clock: Clock = SYSTEM_CLOCK,
        transport_opener: Callable[[RunConfig, int], Transport] = open_transport,
    ) -> None:
        super().__init__(service_id=service_id, control_address=control_address, bus=bus, clock=clock)
        self._transport_opener = transport_opener

    async def configure(self, message: Configure) -> dict[str, int | str]:
        config = message.config
        conversations = await fetch_conversations(self.bus, message.addresses.dataset, self.service_id)
        tokenizer: Tokenizer | None = None
        if config.inputs.tokenizer is not None:
            loop = asyncio.get_running_loop()
            tokenizer = await loop.run_in_executor(None, load_tokenizer, config.inputs.tokenizer)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._completed = 0
        self._loop_lag_ms = 0.0
        slots = slots_per_worker(config.load.max_in_flight, config.worker_count)
        self._transport = self._transport_opener(config, slots)
        self._wall_timer = WallTimer.create(asyncio.get_running_loop())
        origin = RecordOrigin(self.service_id, self.hostname, self.clock_offset_ns, self.clock_offset_bound_ns)
        self._requests = RequestRunner(
            config, conversations, self._transport, origin, tokenizer, self._wall_timer, self.clock
        )
        self._records = self.bus.socket(zmq.PUSH, connect=message.addresses.records, linger_ms=5000)
        self._health = self.bus.socket(zmq.DEALER, connect=message.addresses.health, identity=self.service_id)
        self._credits = self.bus.socket(zmq.DEALER, connect=message.addresses.credits, identity=self.service_id)
        await send(self._credits, WorkerReady(worker_id=self.service_id, slots=slots))
        return {"conversations": len(conversations), "slots": slots}

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        return [self._credits_loop(), self._health_loop()]

    async def on_control(self, message: Message) -> None:
        if isinstance(message, CancelCredits):  # from the controller when the timing manager is gone
            self._cancel_all()
        else:
            await super().on_control(message)

    def _cancel_all(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()

    async def close(self) -> None:
        if hasattr(self, "_transport"):
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            await self._transport.close()
            if self._wall_timer is not None:
                self._wall_timer.close()

    async def _credits_loop(self) -> None:
        while True:
            _, message = await self.bus.next_message(self._credits)
            match message:
                case CreditDrop():
                    task = asyncio.get_running_loop().create_task(self._handle(message))
                    self._tasks[message.credit_id] = task
                case CancelCredits():
                    self._cancel_all()
                case _:
                    log.error("unexpected %s on the credits socket", type(message).__name__)

    async def _health_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:  # the first report goes out at once: until then the worker manager cannot tell we died
            await send(
                self._health,
                WorkerHealth(
                    worker_id=self.service_id,
                    in_flight=len(self._tasks),
                    completed=self._completed,
                    loop_lag_ms=self._loop_lag_ms,
                ),
            )
            expected = loop.time() + HEALTH_INTERVAL_S
            await asyncio.sleep(HEALTH_INTERVAL_S)
            self._loop_lag_ms = max(0.0, (loop.time() - expected) * 1e3)

    async def _handle(self, credit: CreditDrop) -> None:
        """One credit, start to end. Always pushes one record and returns the credit."""
        try:
            record = await self._requests.run(credit)
        finally:
            self._tasks.pop(credit.credit_id, None)
        self._completed += 1
        await send(self._records, RecordBatch(records=[record]))
        await send(self._credits, CreditReturn(credit_id=credit.credit_id))


@dataclass(frozen=True)
class RecordOrigin:
    """Who made a worker's records, and its clock's measured offset to the controller's."""

    worker_id: str
    node: str
    clock_offset_ns: int | None
    clock_offset_bound_ns: int | None


class RequestRunner:
    """A worker's request path, without its sockets: credit -> payload -> transport -> parse -> record.

    One per worker, made in `configure`; `run` is awaited by one task per credit, many at once, on the
    worker's event loop. `wall_timer` is the worker's timerfd timer for due times, or None (not Linux,
    or no due times to wait for).
    """

    def __init__(
        self,
        config: RunConfig,
        conversations: Sequence[Conversation],
        transport: Transport,
        origin: RecordOrigin,
        tokenizer: Tokenizer | None = None,
        wall_timer: WallTimer | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._config = config
        self._conversations = conversations
        self._transport = transport
        self._origin = origin
        self._tokenizer = tokenizer
        self._fallback_tokenizer: Tokenizer | None = None
        self._wall_timer = wall_timer
        self._clock = clock
        self._url = config.endpoint.request_url
        self._headers = self._request_headers(config)
        self._streaming = config.endpoint.streaming and config.endpoint.endpoint_type != "embeddings"
        self._endpoint_type = config.endpoint.endpoint_type
        self._histories: dict[int, list[tuple[str, str]]] = {}
        self._finishing = asyncio.Lock()
        self._first_bodies = [self._body(c.turns[0], ()) for c in conversations]

    def _body(self, turn: Turn, history: Sequence[tuple[str, str]]) -> bytes:
        endpoint = self._config.endpoint
        payload = build_payload(
            endpoint.endpoint_type,
            endpoint.model,
            turn.prompt,
            turn.max_tokens,
            endpoint.streaming,
            endpoint.extra_inputs,
            history,
        )
        return encode_payload(payload)

    @staticmethod
    def _request_headers(config: RunConfig) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if config.endpoint.api_key:
            headers["Authorization"] = f"Bearer {config.endpoint.api_key}"
        headers.update(config.endpoint.headers)
        return headers

    async def run(self, credit: CreditDrop) -> RequestRecord:
        """The record of `credit`'s request; a failed request is a record with an `error_type`.
        Cancelled while waiting for the due time, it raises `CancelledError` and makes no record."""
        conversation = self._conversations[credit.conversation_index]
        turn = conversation.turns[credit.turn_index]
        if credit.turn_index == 0:
            self._histories.pop(credit.conversation_index, None)
            body = self._first_bodies[credit.conversation_index]
        else:
            body = self._body(turn, self._histories.get(credit.conversation_index, ()))
        if credit.scheduled_wall_ns is not None:
            await self._sleep_until_wall(credit.scheduled_wall_ns)
        record, answer = await self._send_request(credit, turn, body)
        self._remember(conversation, credit.turn_index, turn, answer)
        return record

    async def _sleep_until_wall(self, target_wall_ns: int) -> None:
        """Wait for a credit's due time: on the timerfd where there is one (no spinning, see
        `runtime.wall_timer`), else on the loop's timers and a short spin."""
        if self._wall_timer is not None:
            await self._wall_timer.sleep_until(target_wall_ns)
        else:
            await _spin_until_wall(target_wall_ns, self._clock)

    def _remember(self, conversation: Conversation, turn_index: int, turn: Turn, answer: str | None) -> None:
        """Keep the exchange as history for the conversation's next turn (dropped after its last). A
        failed turn has no answer: the history goes on without it."""
        if turn_index + 1 >= len(conversation.turns):
            self._histories.pop(conversation.index, None)
        elif answer is not None:
            self._histories.setdefault(conversation.index, []).append((turn.prompt, answer))

    async def _send_request(self, credit: CreditDrop, turn: Turn, body: bytes) -> tuple[RequestRecord, str | None]:
        request = HttpRequest(self._url, body, self._headers, self._streaming, self._clock)

        def failed(error_type: ErrorType, message: str) -> tuple[RequestRecord, None]:
            return self._failed(credit, request, error_type, message), None

        try:
            async with _cancel_after(credit.cancel_after_ns):
                response = await self._transport.send(request)
            if response.status >= 300:
                return failed("http_error", response.body.decode("utf-8", "replace"))
            async with self._finishing:
                if self._streaming:
                    parsed = parse_stream(self._endpoint_type, parse_sse(response.pieces))
                else:
                    parsed = parse_body(self._endpoint_type, response.body, response.end_perf_ns)
                # Held for one more loop turn: the next finished response waits until the chunks
                # that arrived meanwhile have been stamped.
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            # Only this task is cancelled (CancelCredits, the cancellation delay, shutdown); the request
            # becomes a record.
            return failed("cancelled", "cancelled by the client")
        except RequestTimeout:
            return failed("timeout", f"no complete response within {self._config.endpoint.request_timeout_s:g} s")
        except ConnectionFailed as exc:
            return failed("connection_error", str(exc))
        except Exception as exc:  # failures become data: any other failure is still this request's record
            log.exception("request of credit %d failed unexpectedly", credit.credit_id)
            return failed("client_error", describe(exc))
        record = self._succeeded(credit, turn, request, response, parsed)
        return record, parsed.text if parsed.error is None else None

    def _output_tokens(self, parsed: ParsedResponse) -> tuple[int | None, TokenSource | None]:
        if parsed.completion_tokens is not None:
            return parsed.completion_tokens, "usage"
        if self._endpoint_type == "embeddings":
            return None, None
        if self._tokenizer is not None:
            return self._tokenizer.count(parsed.text), "tokenizer"
        if not self._streaming:  # one body: count its text with the bundled tokenizer
            if self._fallback_tokenizer is None:
                self._fallback_tokenizer = load_tokenizer(None)
            return self._fallback_tokenizer.count(parsed.text), "tokenizer"
        return parsed.content_chunks, "chunks"

    def _succeeded(
        self,
        credit: CreditDrop,
        turn: Turn,
        request: HttpRequest,
        response: HttpResponse,
        parsed: ParsedResponse,
    ) -> RequestRecord:
        output_tokens, source = self._output_tokens(parsed)
        input_tokens = parsed.prompt_tokens if parsed.prompt_tokens is not None else turn.input_tokens_target
        sent_perf_ns = request.sent_perf_ns
        return self._record(
            credit,
            request.sent_wall_ns,
            latency_ns=response.end_perf_ns - sent_perf_ns,
            # A non-streamed response arrives whole: it has a latency but no token times.
            response_times_ns=[t - sent_perf_ns for t in parsed.content_times_ns] if self._streaming else [],
            status_code=response.status,
            error_type=parsed.error_kind,
            error_message=parsed.error,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            output_tokens_source=source,
        )

    def _failed(self, credit: CreditDrop, request: HttpRequest, error_type: ErrorType, message: str) -> RequestRecord:
        return self._record(
            credit,
            request.sent_wall_ns,
            latency_ns=self._clock.perf_ns() - request.sent_perf_ns,
            status_code=request.status,
            error_type=error_type,
            error_message=(message or error_type)[:_ERROR_BODY_CHARS],
        )

    def _record(self, credit: CreditDrop, started_wall_ns: int, **outcome: Any) -> RequestRecord:
        """A record of this worker for `credit`: who, what, when, plus the request's `outcome` fields."""
        origin = self._origin
        return RequestRecord(
            credit_id=credit.credit_id,
            phase=credit.phase,
            worker_id=origin.worker_id,
            node=origin.node,
            conversation_index=credit.conversation_index,
            turn_index=credit.turn_index,
            scheduled_wall_ns=credit.scheduled_wall_ns,
            started_wall_ns=started_wall_ns,
            clock_offset_ns=origin.clock_offset_ns,
            clock_offset_bound_ns=origin.clock_offset_bound_ns,
            **outcome,
        )


_SPIN_S = 0.005  # without a timerfd: the last stretch before a due time, yielding to the loop


async def _spin_until_wall(target_wall_ns: int, clock: Clock = SYSTEM_CLOCK) -> None:
    """Sleep until a wall-clock deadline where there is no `WallTimer` (not Linux); never returns
    before it. The loop's timers fire from about 1 ms early to later, and a process that sleeps waits
    for the OS to run it again, so the last `_SPIN_S` yields to the loop until the deadline passed."""
    remaining_s = (target_wall_ns - clock.wall_ns()) / 1e9
    if remaining_s > _SPIN_S + 0.001:
        await asyncio.sleep(remaining_s - _SPIN_S)
    while clock.wall_ns() < target_wall_ns:  # noqa: ASYNC110 - a wait finer than the loop's timers
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def _cancel_after(delay_ns: int | None) -> AsyncIterator[None]:
    """Cancel the current task `delay_ns` after entering (request cancellation studies); no-op for None."""
    if delay_ns is None:
        yield
        return
    task = asyncio.current_task()
    assert task is not None
    handle = asyncio.get_running_loop().call_later(delay_ns / 1e9, task.cancel)
    try:
        yield
    finally:
        handle.cancel()
