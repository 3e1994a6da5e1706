"""The one catalogue of every message that crosses a process boundary.

Each message is a frozen pydantic model with `extra="forbid"` and a `kind` literal; `Message` is the
discriminated union of all of them and `codec.py` decodes a frame into it in one pass. Which socket
carries which kinds is in `addresses.py`.

Rules: adding an optional field is free; removing a field or changing its meaning bumps
`PROTOCOL_VERSION`; a `kind` string is never reused. Hot-path messages (`CreditDrop`,
`CreditReturn`, `RecordBatch`) carry ids and integers, never a conversation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aiperf_hpc.config import RunConfig
from aiperf_hpc.protocol.addresses import Addresses

PROTOCOL_VERSION = 1

ServiceType = Literal["dataset", "timing", "records", "worker_manager", "worker"]
Phase = Literal["warmup", "profiling"]


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- control: services (DEALER) <-> controller (ROUTER) -------------------------------------------


class Register(_Msg):
    """First message of every service; the controller refuses a protocol mismatch."""

    kind: Literal["register"] = "register"
    service_type: ServiceType
    service_id: str
    pid: int
    hostname: str
    protocol_version: int


class RegisterRefused(_Msg):
    kind: Literal["register_refused"] = "register_refused"
    reason: str


class ClockProbe(_Msg):
    """Service -> controller, before configuration: a ping to measure the clock offset."""

    kind: Literal["clock_probe"] = "clock_probe"
    sent_wall_ns: int


class ClockReply(_Msg):
    """Controller -> service: the probe's send time echoed, with the controller's clock."""

    kind: Literal["clock_reply"] = "clock_reply"
    probe_sent_wall_ns: int
    controller_wall_ns: int


class Configure(_Msg):
    """Controller -> service: the run's config and the socket table. Answered by `Configured`."""

    kind: Literal["configure"] = "configure"
    config: RunConfig
    addresses: Addresses
    run_dir: str
    worker_ids: list[str]


class Configured(_Msg):
    kind: Literal["configured"] = "configured"
    service_id: str
    detail: dict[str, int | str] = Field(default_factory=dict)


class StartProfiling(_Msg):
    """Controller -> timing: issue credits (warmup, then profiling)."""

    kind: Literal["start_profiling"] = "start_profiling"


class StopIssuing(_Msg):
    """Controller -> timing: stop issuing credits now (Ctrl-C, failure); answered by `TimingDone`."""

    kind: Literal["stop_issuing"] = "stop_issuing"
    reason: str


class TimingDone(_Msg):
    """Timing -> controller: no more credits will be issued. `issued` counts credits per phase."""

    kind: Literal["timing_done"] = "timing_done"
    issued: dict[str, int]
    reason: str


class LiveHistogram(_Msg):
    """A Prometheus-style histogram of seconds so far: `buckets[i]` counts the observations <= the
    i-th bound of its family's bounds in `core.live_stats` (cumulative); `count` is the +Inf bucket."""

    buckets: list[int]
    count: int
    sum_s: float


class NodeLiveStats(_Msg):
    """One node's profiling records so far. `requests` counts every record (successes, errors,
    cancelled, lost); `errors` counts them by `error_type`, cancelled ones left out; tokens are the
    successes'. Histograms hold one observation per success: TTFT, ITL ((latency - TTFT) / (output
    tokens - 1)) and request latency."""

    requests: int
    errors: dict[str, int]
    output_tokens: int
    input_tokens: int
    time_to_first_token: LiveHistogram
    inter_token_latency: LiveHistogram
    request_latency: LiveHistogram


class LiveStats(_Msg):
    """The records manager's running figures of the run (`core.live_stats`), for the live view and the
    live /metrics. Rates are over the last few seconds and percentiles over the most recent
    successes, None until there is something to compute them from. `profiling_for_s` is the time
    since the first profiling record arrived (None before)."""

    warmup_requests: int
    by_node: dict[str, NodeLiveStats]
    request_rate_per_s: float | None
    output_token_rate_per_s: float | None
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    itl_p50_ms: float | None
    itl_p99_ms: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    profiling_for_s: float | None

    @property
    def requests(self) -> int:
        return sum(node.requests for node in self.by_node.values())

    @property
    def errors(self) -> int:
        return sum(sum(node.errors.values()) for node in self.by_node.values())

    @property
    def output_tokens(self) -> int:
        return sum(node.output_tokens for node in self.by_node.values())


class RecordsProgress(_Msg):
    """Records -> controller, periodically and whenever `expected` is reached. `received` and
    `errors` count every phase's records; `live` has the running figures of the profiling phase."""

    kind: Literal["records_progress"] = "records_progress"
    received: int
    errors: int
    expected: int | None
    live: LiveStats | None = None


class ExpectRecords(_Msg):
    """Controller -> records: the total number of records (one per issued credit) to wait for."""

    kind: Literal["expect_records"] = "expect_records"
    total: int


class Finalize(_Msg):
    """Controller -> records: compute metrics and write the exports. Answered by `ResultsReady`."""

    kind: Literal["finalize"] = "finalize"
    status: str
    missing_records: int = 0
    dataset: dict[str, int | str] = Field(default_factory=dict)
    max_loop_lag_ms: float | None = None  # the worst worker event-loop lag seen during the run


class ResultsReady(_Msg):
    """Records -> controller: exports written; `metrics` is `core.metrics.RunMetrics` dumped to JSON."""

    kind: Literal["results_ready"] = "results_ready"
    export_path: str
    metrics: dict[str, Any]
    warnings: list[str] = Field(default_factory=list)  # the client's self-check (core.validity)
    server_metrics: dict[str, Any] = Field(default_factory=dict)  # per URL: core.server_metrics summary


class WorkerLost(_Msg):
    """Worker manager -> controller -> timing: a worker is gone; its in-flight credits are lost."""

    kind: Literal["worker_lost"] = "worker_lost"
    worker_id: str
    reason: str


class WorkerStatus(_Msg):
    """Worker manager -> controller: a health summary of all workers."""

    kind: Literal["worker_status"] = "worker_status"
    alive: int
    in_flight: int
    max_loop_lag_ms: float
    completed: int = 0  # credits the live workers finished (each pushed its record)


class Heartbeat(_Msg):
    """Both ways on the control socket: a service that hears nothing from the controller for
    `CONTROLLER_SILENCE_LIMIT_S` exits, so a killed controller leaves no process behind."""

    kind: Literal["heartbeat"] = "heartbeat"
    service_id: str


class ServiceFailed(_Msg):
    """Service -> controller. `usage_error`: the user's input was at fault (exit code 2, not 1)."""

    kind: Literal["service_failed"] = "service_failed"
    service_id: str
    error: str
    usage_error: bool = False


class Shutdown(_Msg):
    kind: Literal["shutdown"] = "shutdown"


# --- credits: timing (ROUTER) <-> workers (DEALER) ------------------------------------------------


class WorkerReady(_Msg):
    """Worker -> timing: the worker exists and can hold `slots` requests at once."""

    kind: Literal["worker_ready"] = "worker_ready"
    worker_id: str
    slots: int


class CreditDrop(_Msg):
    """Timing -> worker: send turn `turn_index` of conversation `conversation_index`, at
    `scheduled_wall_ns` when given (rate and trace modes), else at once. With `cancel_after_ns` the
    worker cancels the request that long after sending it (request cancellation studies)."""

    kind: Literal["credit_drop"] = "credit_drop"
    credit_id: int
    phase: Phase
    conversation_index: int
    turn_index: int = 0
    scheduled_wall_ns: int | None = None
    cancel_after_ns: int | None = None


class CancelCredits(_Msg):
    """Timing -> worker: cancel every request in flight (grace period over, or stopping); each
    cancelled request still produces a record and returns its credit."""

    kind: Literal["cancel_credits"] = "cancel_credits"


class CreditReturn(_Msg):
    """Worker -> timing: the credit's request is over and its record was pushed. Idempotent."""

    kind: Literal["credit_return"] = "credit_return"
    credit_id: int


# --- dataset: workers (DEALER) <-> dataset manager (ROUTER) ---------------------------------------


class Turn(_Msg):
    """One request of a conversation: the user's message and how it is scheduled.

    `delay_ms` (multi-turn) is the pause after the previous turn's response before this turn is
    sent; `timestamp_ms` (fixed schedule / traces) is when to send it, from the start of the trace.
    """

    prompt: str
    max_tokens: int | None = None
    input_tokens_target: int | None = None
    delay_ms: float | None = None
    timestamp_ms: float | None = None


class Conversation(_Msg):
    """A conversation of one or more turns; a single-turn dataset entry is a conversation of one.
    Later turns carry the previous turns' prompts and answers as chat history."""

    index: int
    session_id: str
    turns: list[Turn]


class DatasetRequest(_Msg):
    kind: Literal["dataset_request"] = "dataset_request"
    worker_id: str


class DatasetReply(_Msg):
    kind: Literal["dataset_reply"] = "dataset_reply"
    conversations: list[Conversation]


# --- records: workers and timing (PUSH) -> records manager (PULL) ---------------------------------

ErrorType = Literal[
    "http_error",  # non-2xx status; status_code says which
    "connection_error",  # refused, reset, DNS, disconnect before the response ended
    "timeout",  # --request-timeout-seconds expired
    "invalid_response",  # a body or SSE event that is not the JSON the endpoint promises
    "server_error_event",  # an `error` object inside a 2xx stream
    "cancelled",  # cancelled by the client (grace period over, Ctrl-C); not a server error
    "lost",  # its worker died; produced by the timing manager's ledger
    "client_error",  # an unexpected failure inside the worker while handling the request
]


TokenSource = Literal["usage", "tokenizer", "chunks"]


class RequestRecord(_Msg):
    """One request, whatever happened to it. Times inside one request are perf_counter offsets
    from the send (`*_ns` durations); `started_wall_ns` anchors the request in wall-clock time, and
    `scheduled_wall_ns` (rate and trace modes) is when it should have been sent: the difference is
    the send lag. `output_tokens_source` says where `output_tokens` came from."""

    credit_id: int
    phase: Phase
    worker_id: str
    node: str
    conversation_index: int
    turn_index: int = 0
    scheduled_wall_ns: int | None = None
    started_wall_ns: int
    latency_ns: int | None = None
    response_times_ns: list[int] = Field(default_factory=list)
    status_code: int | None = None
    error_type: ErrorType | None = None
    error_message: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    output_tokens_source: TokenSource | None = None
    clock_offset_ns: int | None = None  # controller clock minus this worker's clock (min-RTT estimate)
    clock_offset_bound_ns: int | None = None  # half the round trip of that estimate: its error bound


class RecordBatch(_Msg):
    kind: Literal["record_batch"] = "record_batch"
    records: list[RequestRecord]


# --- worker health: workers (DEALER) -> worker manager (ROUTER) -----------------------------------


class WorkerHealth(_Msg):
    kind: Literal["worker_health"] = "worker_health"
    worker_id: str
    in_flight: int
    completed: int
    loop_lag_ms: float


Message = Annotated[
    Register
    | RegisterRefused
    | ClockProbe
    | ClockReply
    | Configure
    | Configured
    | StartProfiling
    | StopIssuing
    | TimingDone
    | RecordsProgress
    | ExpectRecords
    | Finalize
    | ResultsReady
    | WorkerLost
    | WorkerStatus
    | Heartbeat
    | ServiceFailed
    | Shutdown
    | WorkerReady
    | CreditDrop
    | CancelCredits
    | CreditReturn
    | DatasetRequest
    | DatasetReply
    | RecordBatch
    | WorkerHealth,
    Field(discriminator="kind"),
]
