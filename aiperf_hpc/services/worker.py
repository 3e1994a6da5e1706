"""Worker: turns credits into HTTP requests and every request into exactly one record.

On configure it fetches the dataset once, pre-encodes every request body, opens one aiohttp session
(keep-alive, one connector) and tells the timing manager how many slots it has. Each `CreditDrop`
becomes one task: send, read the response while stamping every received chunk with
`perf_counter_ns`, parse after the response ended (never per chunk), push the record, return the
credit. Failures become records with an `error_type`; they never escape the task.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Coroutine
from typing import Any

import aiohttp
import zmq

from aiperf_hpc.config import RunConfig
from aiperf_hpc.endpoints.payload import build_payload, encode_payload
from aiperf_hpc.endpoints.response import ParsedResponse, parse_body, parse_stream
from aiperf_hpc.endpoints.sse import parse_sse
from aiperf_hpc.errors import DeadlineExceeded, ServiceError
from aiperf_hpc.protocol.messages import (
    CancelCredits,
    Configure,
    CreditDrop,
    CreditReturn,
    DatasetEntry,
    DatasetReply,
    DatasetRequest,
    ErrorType,
    RecordBatch,
    RequestRecord,
    WorkerHealth,
    WorkerReady,
)
from aiperf_hpc.runtime.bus import send
from aiperf_hpc.runtime.service import Service

log = logging.getLogger(__name__)

DATASET_TIMEOUT_S = 60.0
HEALTH_INTERVAL_S = 1.0
_IDLE_POLL_S = 1.0
_ERROR_BODY_CHARS = 300


def slots_per_worker(concurrency: int, workers: int) -> int:
    """Room each worker offers: its share of the concurrency, so the total covers the limit."""
    return max(1, math.ceil(concurrency / workers))


class Worker(Service):
    service_type = "worker"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        config = message.config
        self._config = config
        entries = await self._fetch_dataset(message.addresses.dataset)
        self._entries = entries
        self._bodies = [self._body(config, entry) for entry in entries]
        self._url = config.endpoint.request_url
        self._headers = self._request_headers(config)
        self._streaming = config.endpoint.streaming
        self._endpoint_type = config.endpoint.endpoint_type
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._completed = 0
        self._loop_lag_ms = 0.0
        slots = slots_per_worker(config.load.concurrency, config.worker_count)
        timeout_s = config.endpoint.request_timeout_s
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=slots, limit_per_host=slots, keepalive_timeout=60),
            # Every field set on purpose: setting only some silently drops the others' defaults.
            timeout=aiohttp.ClientTimeout(
                total=timeout_s, connect=timeout_s, sock_connect=timeout_s, sock_read=timeout_s
            ),
            auto_decompress=False,
        )
        self._records = self.bus.socket(zmq.PUSH, connect=message.addresses.records, linger_ms=5000)
        self._health = self.bus.socket(zmq.DEALER, connect=message.addresses.health, identity=self.service_id)
        self._credits = self.bus.socket(zmq.DEALER, connect=message.addresses.credits, identity=self.service_id)
        await send(self._credits, WorkerReady(worker_id=self.service_id, slots=slots))
        return {"entries": len(entries), "slots": slots}

    async def _fetch_dataset(self, address: str) -> list[DatasetEntry]:
        sock = self.bus.socket(zmq.DEALER, connect=address, identity=self.service_id)
        await send(sock, DatasetRequest(worker_id=self.service_id))
        reply = await self.bus.recv(sock, timeout_s=DATASET_TIMEOUT_S, what="the dataset")
        if not isinstance(reply, DatasetReply) or not reply.entries:
            raise ServiceError("the dataset manager sent no entries")
        return reply.entries

    @staticmethod
    def _body(config: RunConfig, entry: DatasetEntry) -> bytes:
        payload = build_payload(
            config.endpoint.endpoint_type,
            config.endpoint.model,
            entry.prompt,
            entry.max_tokens,
            config.endpoint.streaming,
            config.endpoint.extra_inputs,
        )
        return encode_payload(payload)

    @staticmethod
    def _request_headers(config: RunConfig) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if config.endpoint.api_key:
            headers["Authorization"] = f"Bearer {config.endpoint.api_key}"
        headers.update(config.endpoint.headers)
        return headers

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        return [self._credits_loop(), self._health_loop()]

    async def close(self) -> None:
        if hasattr(self, "_session"):
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            await self._session.close()

    async def _credits_loop(self) -> None:
        while True:
            try:
                message = await self.bus.recv(self._credits, timeout_s=_IDLE_POLL_S, what="credits")
            except DeadlineExceeded:
                continue
            match message:
                case CreditDrop():
                    task = asyncio.get_running_loop().create_task(self._handle(message))
                    self._tasks[message.credit_id] = task
                case CancelCredits():
                    for task in list(self._tasks.values()):
                        task.cancel()
                case _:
                    log.error("unexpected %s on the credits socket", type(message).__name__)

    async def _health_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + HEALTH_INTERVAL_S
            await asyncio.sleep(HEALTH_INTERVAL_S)
            self._loop_lag_ms = max(0.0, (loop.time() - expected) * 1e3)
            await send(
                self._health,
                WorkerHealth(
                    worker_id=self.service_id,
                    in_flight=len(self._tasks),
                    completed=self._completed,
                    loop_lag_ms=self._loop_lag_ms,
                ),
            )

    async def _handle(self, credit: CreditDrop) -> None:
        """One credit, start to end. Always pushes one record and returns the credit."""
        try:
            record = await self._send_request(credit)
        finally:
            self._tasks.pop(credit.credit_id, None)
        self._completed += 1
        await send(self._records, RecordBatch(records=[record]))
        await send(self._credits, CreditReturn(credit_id=credit.credit_id))

    async def _send_request(self, credit: CreditDrop) -> RequestRecord:
        entry = self._entries[credit.entry_index % len(self._entries)]
        body = self._bodies[credit.entry_index % len(self._bodies)]
        started_wall_ns = time.time_ns()
        sent_perf_ns = time.perf_counter_ns()
        status: int | None = None
        try:
            async with self._session.post(self._url, data=body, headers=self._headers) as response:
                status = response.status
                if status >= 300:
                    error_body = (await response.read()).decode("utf-8", "replace")
                    return self._failed(credit, started_wall_ns, sent_perf_ns, "http_error", error_body, status)
                if self._streaming:
                    chunks = [(time.perf_counter_ns(), data) async for data in response.content.iter_any()]
                    end_perf_ns = time.perf_counter_ns()
                    parsed = parse_stream(self._endpoint_type, parse_sse(chunks))
                else:
                    raw = await response.read()
                    end_perf_ns = time.perf_counter_ns()
                    parsed = parse_body(self._endpoint_type, raw, end_perf_ns)
        except asyncio.CancelledError:
            # Only this task is cancelled (CancelCredits or shutdown); the request becomes a record.
            return self._failed(credit, started_wall_ns, sent_perf_ns, "cancelled", "cancelled by the client")
        except asyncio.TimeoutError:
            message = f"no complete response within {self._config.endpoint.request_timeout_s:g} s"
            return self._failed(credit, started_wall_ns, sent_perf_ns, "timeout", message, status)
        except aiohttp.ClientError as exc:
            return self._failed(credit, started_wall_ns, sent_perf_ns, "connection_error", str(exc), status)
        return self._succeeded(credit, entry, started_wall_ns, sent_perf_ns, end_perf_ns, status, parsed)

    def _succeeded(
        self,
        credit: CreditDrop,
        entry: DatasetEntry,
        started_wall_ns: int,
        sent_perf_ns: int,
        end_perf_ns: int,
        status: int,
        parsed: ParsedResponse,
    ) -> RequestRecord:
        usage_tokens = parsed.completion_tokens
        return RequestRecord(
            credit_id=credit.credit_id,
            phase=credit.phase,
            worker_id=self.service_id,
            node=self.hostname,
            entry_index=credit.entry_index,
            scheduled_wall_ns=credit.scheduled_wall_ns,
            started_wall_ns=started_wall_ns,
            latency_ns=end_perf_ns - sent_perf_ns,
            # A non-streamed response arrives whole: it has a latency but no token times.
            response_times_ns=[t - sent_perf_ns for t in parsed.content_times_ns] if self._streaming else [],
            status_code=status,
            error_type=parsed.error_kind,
            error_message=parsed.error,
            input_tokens=parsed.prompt_tokens if parsed.prompt_tokens is not None else entry.input_tokens_target,
            output_tokens=usage_tokens if usage_tokens is not None else parsed.content_chunks,
            output_tokens_from_usage=usage_tokens is not None,
        )

    def _failed(
        self,
        credit: CreditDrop,
        started_wall_ns: int,
        sent_perf_ns: int,
        error_type: ErrorType,
        message: str,
        status: int | None = None,
    ) -> RequestRecord:
        return RequestRecord(
            credit_id=credit.credit_id,
            phase=credit.phase,
            worker_id=self.service_id,
            node=self.hostname,
            entry_index=credit.entry_index,
            scheduled_wall_ns=credit.scheduled_wall_ns,
            started_wall_ns=started_wall_ns,
            latency_ns=time.perf_counter_ns() - sent_perf_ns,
            status_code=status,
            error_type=error_type,
            error_message=(message or error_type)[:_ERROR_BODY_CHARS],
        )
