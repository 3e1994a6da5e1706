"""The user's run configuration: frozen pydantic models, validated once in the CLI process.

The controller ships `RunConfig` to every service inside the `Configure` message, so these models are
also part of the wire protocol: adding an optional field is free, changing a meaning bumps
`PROTOCOL_VERSION`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from aiperf_hpc.api_key import API_KEY_ENV
from aiperf_hpc.option_spec import (
    CLUSTER,
    CONVERSATIONS,
    ENDPOINT,
    INPUTS,
    LOAD,
    OUTPUT,
    SCHEDULE,
    Option,
    parse_extra_inputs,
    parse_goodput_spec,
    parse_headers,
)

EndpointType = Literal["chat", "completions", "embeddings"]
RequestRateMode = Literal["constant", "poisson", "gamma"]
LauncherKind = Literal["auto", "local", "slurm"]
OnWorkerLoss = Literal["continue", "abort"]
CustomDatasetType = Literal["single_turn", "multi_turn", "mooncake_trace"]
PublicDataset = Literal["sharegpt"]
UiMode = Literal["auto", "live", "simple", "none"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# RFC 9110 token characters: what an HTTP header name may contain.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

ENDPOINT_PATHS: dict[str, str] = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
}


class _Frozen(BaseModel):
    """Every config model. Values must survive the wire (`Configure` is JSON written by orjson), so a
    value orjson cannot write faithfully is refused here, naming its option, rather than crashing the
    controller later: see `_wire_problem`."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _fits_the_wire(cls, value: Any) -> Any:
        problem = _wire_problem(value)
        if problem is not None:
            raise PydanticCustomError("wire", "{problem}", {"problem": problem})
        return value


def _wire_problem(value: Any) -> str | None:
    """Why orjson cannot carry `value` faithfully, or None: an integer beyond 64 bits (refused), a NaN
    or infinite float (written as null), a string that is not UTF-8 (refused; argv decodes undecodable
    bytes to lone surrogates), or a type JSON does not have. Nested models check their own fields."""
    if value is None or isinstance(value, (bool, BaseModel)):
        return None
    if isinstance(value, int):
        return None if _INT64_MIN <= value <= _INT64_MAX else f"{value} does not fit in a signed 64-bit integer"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, (str, PurePath)):
        try:
            str(value).encode("utf-8")
        except UnicodeEncodeError:
            return f"{str(value)!r} is not valid UTF-8"
        return None
    if isinstance(value, dict):
        items = [item for pair in value.items() for item in pair]
        return next((problem for item in items if (problem := _wire_problem(item)) is not None), None)
    if isinstance(value, list):
        return next((problem for item in value if (problem := _wire_problem(item)) is not None), None)
    return f"a {type(value).__name__} cannot be sent as JSON"


class EndpointConfig(_Frozen):
    """Where and how requests are sent."""

    url: Annotated[str, Option(ENDPOINT, "Server base URL.", ("--url", "-u"))] = "http://127.0.0.1:8000"
    model: Annotated[str, Option(ENDPOINT, "Model name sent in requests.", ("--model", "-m"))]
    endpoint_type: Annotated[EndpointType, Option(ENDPOINT)] = "chat"
    streaming: Annotated[bool, Option(ENDPOINT, "Stream responses (SSE); needed for TTFT and ITL.")] = False
    api_key: Annotated[
        str | None,
        Option(
            ENDPOINT,
            "Sent as 'Authorization: Bearer KEY'. Prefer the environment variable: ps shows command lines.",
            env_var=API_KEY_ENV,
        ),
    ] = None
    headers: Annotated[
        dict[str, str],
        Option(
            ENDPOINT,
            "Extra header 'Name:Value' (repeat).",
            ("--header", "-H"),
            cli_type=list[str] | None,
            parse=parse_headers,
        ),
    ] = Field(default_factory=dict)
    extra_inputs: Annotated[
        dict[str, Any],
        Option(
            ENDPOINT,
            "Extra body field 'key:value'; the value is parsed as JSON when it is JSON.",
            cli_type=list[str] | None,
            parse=parse_extra_inputs,
        ),
    ] = Field(default_factory=dict)
    request_timeout_s: Annotated[float, Option(ENDPOINT, names=("--request-timeout-seconds",))] = Field(
        default=600.0, gt=0
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must be an http:// or https:// URL with a host, got {url!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"--url has an invalid port: {url!r}") from exc
        if port == 0:
            raise ValueError(f"--url has an invalid port: {url!r}")
        return url.rstrip("/")

    @field_validator("model")
    @classmethod
    def _check_model(cls, model: str) -> str:
        if not model.strip():
            raise ValueError(f"expected a model name, got {model!r}")
        return model

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if _has_control_characters(value):
                raise ValueError(f"the value of {name!r} contains a line break or control character")
        return headers

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, api_key: str | None) -> str | None:
        if api_key is not None and (not api_key or _has_control_characters(api_key)):
            raise ValueError("the key is empty or contains a line break or control character")
        return api_key

    @property
    def request_url(self) -> str:
        """The full URL requests go to. A URL that already names the endpoint path is used as given."""
        path = ENDPOINT_PATHS[self.endpoint_type]
        if self.url.endswith(path):
            return self.url
        if self.url.endswith("/v1"):
            return self.url[: -len("/v1")] + path
        return self.url + path


def _has_control_characters(text: str) -> bool:
    """True when `text` holds a character that cannot go into an HTTP header (tab aside)."""
    return any((ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F for char in text)


class InputConfig(_Frozen):
    """What is sent: synthetic prompts (token lengths from normal distributions, clipped at 1) or a
    file. Lengths are in tokens of `tokenizer` (the bundled tokenizer when None)."""

    isl_mean: Annotated[int, Option(INPUTS, "Mean prompt tokens.", ("--isl", "--synthetic-input-tokens-mean"))] = Field(
        default=550, ge=1
    )
    isl_stddev: Annotated[float, Option(INPUTS, names=("--isl-stddev", "--synthetic-input-tokens-stddev"))] = Field(
        default=0.0, ge=0
    )
    osl_mean: Annotated[
        int | None, Option(INPUTS, "Mean max_tokens (default: server's).", ("--osl", "--output-tokens-mean"))
    ] = Field(default=None, ge=1)
    osl_stddev: Annotated[float, Option(INPUTS, names=("--osl-stddev", "--output-tokens-stddev"))] = Field(
        default=0.0, ge=0
    )
    num_entries: Annotated[
        int, Option(INPUTS, "Distinct synthetic prompts, used in turn.", ("--num-dataset-entries",))
    ] = Field(default=100, ge=1)
    random_seed: Annotated[int, Option(INPUTS)] = Field(default=0, ge=0)
    tokenizer: Annotated[
        str | None, Option(INPUTS, "Hugging Face tokenizer: local dir or name (default: the bundled one).")
    ] = None
    prompt_prefix_pool_size: Annotated[int, Option(INPUTS, "Shared prefixes to draw from (prefix caching).")] = Field(
        default=0, ge=0
    )
    prompt_prefix_length: Annotated[int, Option(INPUTS, "Tokens per shared prefix.")] = Field(default=0, ge=0)
    isl_block_size: Annotated[int, Option(INPUTS, "Tokens per trace hash_ids block.")] = Field(default=512, ge=1)
    input_file: Annotated[Path | None, Option(INPUTS, "Dataset file (JSONL, or ShareGPT JSON).")] = None
    custom_dataset_type: Annotated[CustomDatasetType | None, Option(INPUTS)] = None
    public_dataset: Annotated[PublicDataset | None, Option(INPUTS, "Format of --input-file (nothing downloaded).")] = (
        None
    )
    conversation_num: Annotated[int | None, Option(CONVERSATIONS, "Synthetic multi-turn conversations.")] = Field(
        default=None, ge=1
    )
    conversation_turn_mean: Annotated[int, Option(CONVERSATIONS)] = Field(default=1, ge=1)
    conversation_turn_stddev: Annotated[float, Option(CONVERSATIONS)] = Field(default=0.0, ge=0)
    conversation_turn_delay_mean_ms: Annotated[
        float,
        Option(CONVERSATIONS, "ms between an answer and the next turn.", ("--conversation-turn-delay-mean",)),
    ] = Field(default=0.0, ge=0)
    conversation_turn_delay_stddev_ms: Annotated[
        float, Option(CONVERSATIONS, names=("--conversation-turn-delay-stddev",))
    ] = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> InputConfig:
        if (self.prompt_prefix_pool_size > 0) != (self.prompt_prefix_length > 0):
            raise ValueError("--prompt-prefix-pool-size and --prompt-prefix-length go together")
        if self.input_file is None and (self.custom_dataset_type or self.public_dataset):
            raise ValueError("--custom-dataset-type and --public-dataset need --input-file")
        if self.custom_dataset_type is not None and self.public_dataset is not None:
            raise ValueError("--custom-dataset-type and --public-dataset cannot be used together")
        if self.input_file is not None and self.custom_dataset_type is None and self.public_dataset is None:
            raise ValueError("--input-file needs --custom-dataset-type or --public-dataset")
        if self.input_file is not None and self.conversation_num is not None:
            raise ValueError("--conversation-num makes synthetic conversations; it cannot be used with --input-file")
        return self


class LoadConfig(_Frozen):
    """How much load and for how long. The TimingManager is the only reader of these fields.

    Without `request_rate` (and without a fixed schedule) the load is closed-loop: `concurrency`
    requests in flight. With a rate, requests arrive on an absolute schedule and `concurrency`, when
    given, caps what is in flight on top of it.
    """

    concurrency: Annotated[
        int | None,
        Option(LOAD, "Requests in flight at once; with a rate, a cap. A list '1,4,16' sweeps.", sweep=int),
    ] = Field(default=None, ge=1)
    request_rate: Annotated[
        float | None, Option(LOAD, "Requests per second on an absolute schedule. A list '10,20' sweeps.", sweep=float)
    ] = Field(default=None, gt=0)
    request_rate_mode: Annotated[RequestRateMode, Option(LOAD)] = "poisson"
    burstiness: Annotated[float, Option(LOAD, "Gamma shape (1 = Poisson, lower = burstier); needs gamma.")] = Field(
        default=1.0, gt=0
    )
    ramp_up_duration_s: Annotated[
        float, Option(LOAD, "Seconds to ramp the concurrency or rate up linearly.", ("--ramp-up-duration",))
    ] = Field(default=0.0, ge=0)
    request_count: Annotated[int | None, Option(LOAD, "Requests to send (default: 10 x concurrency).")] = Field(
        default=None, ge=1
    )
    benchmark_duration_s: Annotated[
        float | None, Option(LOAD, "Seconds to send requests for.", ("--benchmark-duration",))
    ] = Field(default=None, gt=0)
    grace_period_s: Annotated[
        float, Option(LOAD, "Seconds in-flight requests may finish after the duration.", ("--benchmark-grace-period",))
    ] = Field(default=30.0, ge=0)
    warmup_request_count: Annotated[int, Option(LOAD, "Requests sent first, left out of results.")] = Field(
        default=0, ge=0
    )
    warmup_duration_s: Annotated[
        float | None, Option(LOAD, "Seconds of warmup, left out of results.", ("--warmup-duration",))
    ] = Field(default=None, gt=0)
    fixed_schedule: Annotated[bool, Option(SCHEDULE, "Replay the input file's timestamps (ms).")] = False
    fixed_schedule_start_offset_ms: Annotated[
        float | None, Option(SCHEDULE, "Trace ms to start at.", ("--fixed-schedule-start-offset",))
    ] = Field(default=None, ge=0)
    fixed_schedule_end_offset_ms: Annotated[
        float | None, Option(SCHEDULE, "Trace ms to stop at.", ("--fixed-schedule-end-offset",))
    ] = Field(default=None, ge=0)
    fixed_schedule_speedup: Annotated[float, Option(SCHEDULE, "Replay speed factor (2 = twice as fast).")] = Field(
        default=1.0, gt=0
    )
    request_cancellation_rate: Annotated[float, Option(SCHEDULE, "Percent of requests to cancel.")] = Field(
        default=0.0, ge=0, le=100
    )
    request_cancellation_delay_s: Annotated[
        float, Option(SCHEDULE, "Seconds after sending to cancel them.", ("--request-cancellation-delay",))
    ] = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> LoadConfig:
        if self.request_count is not None and self.benchmark_duration_s is not None:
            raise ValueError("--request-count and --benchmark-duration cannot be used together")
        if self.warmup_request_count and self.warmup_duration_s is not None:
            raise ValueError("--warmup-request-count and --warmup-duration cannot be used together")
        if self.fixed_schedule and self.request_rate is not None:
            raise ValueError("--fixed-schedule and --request-rate cannot be used together")
        if self.fixed_schedule and (self.warmup_request_count or self.warmup_duration_s or self.ramp_up_duration_s):
            raise ValueError("--fixed-schedule replays the trace as is: no warmup or ramp-up with it")
        if self.request_rate_mode != "gamma" and self.burstiness != 1.0:
            raise ValueError("--burstiness needs --request-rate-mode gamma")
        if self.request_rate is None and self.request_rate_mode != "poisson":
            raise ValueError(f"--request-rate-mode {self.request_rate_mode} needs --request-rate")
        if not self.fixed_schedule and (
            self.fixed_schedule_start_offset_ms is not None
            or self.fixed_schedule_end_offset_ms is not None
            or self.fixed_schedule_speedup != 1.0
        ):
            raise ValueError("--fixed-schedule-start-offset, -end-offset and -speedup need --fixed-schedule")
        if (
            self.fixed_schedule_start_offset_ms is not None
            and self.fixed_schedule_end_offset_ms is not None
            and self.fixed_schedule_end_offset_ms < self.fixed_schedule_start_offset_ms
        ):
            raise ValueError("--fixed-schedule-end-offset is before --fixed-schedule-start-offset")
        return self

    @property
    def max_in_flight(self) -> int | None:
        """The cap on requests in flight: the concurrency; None (no cap) for rate and trace modes without
        one; 1 for closed-loop runs that name neither a rate nor a concurrency."""
        if self.concurrency is not None:
            return self.concurrency
        if self.request_rate is None and not self.fixed_schedule:
            return 1
        return None

    @property
    def profiling_request_count(self) -> int | None:
        """Requests in the profiling phase; None when the phase is bounded by duration (or the trace)."""
        if self.benchmark_duration_s is not None:
            return None
        if self.request_count is not None:
            return self.request_count
        if self.fixed_schedule:
            return None
        return max(10, 10 * (self.max_in_flight or 1))


class MetricsConfig(_Frozen):
    """How results are judged: `goodput` maps a metric name to its SLO in ms (a request is good when
    it meets every SLO)."""

    goodput: Annotated[
        dict[str, float],
        Option(
            OUTPUT,
            "SLOs in ms, e.g. 'time_to_first_token:200 inter_token_latency:20'.",
            cli_type=str | None,
            parse=parse_goodput_spec,
        ),
    ] = Field(default_factory=dict)
    failure_threshold_pct: Annotated[
        float | None,
        Option(
            OUTPUT,
            "Stop early, with partial results, once more than this % of requests failed.",
            ("--failure-threshold",),
        ),
    ] = Field(default=None, gt=0, le=100)
    slice_duration_s: Annotated[  # per-window results (core.time_slices)
        float | None,
        Option(
            OUTPUT,
            "Also write results per window of this many seconds (by request start).",
            ("--slice-duration",),
        ),
    ] = Field(default=None, gt=0)

    def failure_threshold_crossed(self, received: int, errors: int) -> bool:
        """True once more than the threshold's share of the requests so far failed. Judged only from
        `FAILURE_THRESHOLD_MIN_RECORDS` records on, so one early error cannot stop a run."""
        if self.failure_threshold_pct is None or received < FAILURE_THRESHOLD_MIN_RECORDS:
            return False
        return errors * 100.0 > self.failure_threshold_pct * received


FAILURE_THRESHOLD_MIN_RECORDS = 10


class ServerMetricsConfig(_Frozen):
    """Scraping the server's Prometheus `/metrics` during the run. Without `urls` the CLI tries
    `<url>/metrics` and keeps it when it answers Prometheus text; the records manager scrapes the
    `urls` it is given (one per replica)."""

    enabled: Annotated[
        bool,
        Option(
            OUTPUT,
            "Scrape the server's /metrics during the run.",
            ("--server-metrics",),
            negative="--no-server-metrics",
        ),
    ] = True
    urls: Annotated[
        list[str],
        Option(
            OUTPUT,
            "Prometheus /metrics to scrape every second (repeat; default: URL/metrics).",
            ("--server-metrics-url",),
            cli_type=list[str] | None,
        ),
    ] = Field(default_factory=list)

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"expected an http:// or https:// URL with a host, got {url!r}")
        return urls

    @model_validator(mode="after")
    def _consistent(self) -> ServerMetricsConfig:
        if self.urls and not self.enabled:
            raise ValueError("--server-metrics-url and --no-server-metrics cannot be used together")
        return self


class ClusterConfig(_Frozen):
    """Where the workers run. `launcher` auto picks slurm inside a multi-task allocation, else local."""

    launcher: Annotated[LauncherKind, Option(CLUSTER, "auto: slurm inside a multi-task allocation, else local.")] = (
        "auto"
    )
    nodes: Annotated[int | None, Option(CLUSTER, "Nodes of the allocation to put workers on (default: all).")] = Field(
        default=None, ge=1
    )
    workers_per_node: Annotated[
        int | None, Option(CLUSTER, "Workers per node (default: the allocation's tasks per node).")
    ] = Field(default=None, ge=1)
    zmq_host: Annotated[
        str | None, Option(CLUSTER, "Address the nodes reach this host at (default: its name, resolved).")
    ] = None
    srun_overlap: Annotated[
        bool,
        Option(
            CLUSTER,
            "srun --overlap for the workers' step: share the allocation with running steps.",
            ("--overlap", "--srun-overlap"),
            negative=(),
        ),
    ] = False
    on_worker_loss: Annotated[OnWorkerLoss, Option(CLUSTER, "Go on with the other workers, or stop.")] = "continue"


class LiveConfig(_Frozen):
    """How a run shows itself while it runs, in the CLI process only (services ignore it).

    `ui`: `live` (a rich view on stderr), `simple` (a plain progress line every few seconds), `none`
    (no progress output), `auto` (live on a terminal, else simple). `metrics_port`: serve the run's
    live figures as Prometheus text at http://`metrics_host`:PORT/metrics (0: any free port; None:
    no server)."""

    ui: Annotated[
        UiMode,
        Option(OUTPUT, "Progress on stderr: live view, a plain line every 5 s, none; auto: live on a terminal."),
    ] = "auto"
    metrics_port: Annotated[
        int | None, Option(OUTPUT, "Serve the run's live figures at http://HOST:PORT/metrics (0: a free port).")
    ] = Field(default=None, ge=0, le=65535)
    metrics_host: Annotated[str, Option(OUTPUT, "Address the live /metrics listens on.")] = "127.0.0.1"

    @field_validator("metrics_host")
    @classmethod
    def _check_host(cls, host: str) -> str:
        if not host.strip() or any(char.isspace() or char in "/[]" for char in host.strip("[]")):
            raise ValueError(f"expected a host name or address, got {host!r}")
        return host.strip("[]")


class RunConfig(_Frozen):
    """Everything one `profile` run needs; shipped to every service at configure time."""

    endpoint: EndpointConfig
    inputs: InputConfig = Field(default_factory=InputConfig)
    load: LoadConfig = Field(default_factory=LoadConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    server_metrics: ServerMetricsConfig = Field(default_factory=ServerMetricsConfig)
    live: LiveConfig = Field(default_factory=LiveConfig)
    workers: Annotated[
        int,
        Option(OUTPUT, "Worker processes (default: CPU cores, at most the cap).", cli_type=int | None),
    ] = Field(default=0, ge=0, description="0 means: chosen from concurrency and CPU count")
    artifact_dir: Annotated[
        Path, Option(OUTPUT, "Where results go (default: artifacts/MODEL-ENDPOINT-...).", cli_type=Path | None)
    ] = Path("artifacts")
    service_start_timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.load.fixed_schedule and (self.inputs.input_file is None or self.inputs.public_dataset is not None):
            raise ValueError("--fixed-schedule replays the timestamps of an --input-file with a --custom-dataset-type")
        return self

    @property
    def synthetic_entries(self) -> int:
        """How many synthetic single-turn conversations to build: `num_entries`, or fewer when a
        request count bounds every phase. Each phase sends conversations 0, 1, 2, ... in turn, so a
        run of 1 request sends only the first, and building the other 99 prompts (about a
        millisecond each) would only delay its first request. The first n are the same whatever n."""
        inputs, load = self.inputs, self.load
        if load.request_count is None or load.warmup_duration_s is not None:
            return inputs.num_entries
        return min(inputs.num_entries, max(load.request_count, load.warmup_request_count))

    @property
    def dataset_pass(self) -> bool:
        """An input file with neither a request count nor a duration: send every conversation once."""
        load = self.load
        return (
            self.inputs.input_file is not None
            and load.request_count is None
            and load.benchmark_duration_s is None
            and not load.fixed_schedule
        )

    def redacted(self) -> dict[str, Any]:
        """The config as JSON-ready data with secrets (API key, header values) masked, for exports."""
        data = self.model_dump(mode="json")
        endpoint = data["endpoint"]
        if endpoint["api_key"]:
            endpoint["api_key"] = "***"
        endpoint["headers"] = {name: "***" for name in endpoint["headers"]}
        return data

    @property
    def worker_count(self) -> int:
        """Workers to start: the user's choice, else one per CPU core, never more than the concurrency."""
        if self.workers > 0:
            return self.workers
        cores = os.cpu_count() or 1
        cap = self.load.max_in_flight
        return max(1, cores if cap is None else min(cap, cores))
