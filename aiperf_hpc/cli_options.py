"""The `profile` options, grouped as in `--help`, and their translation into validated `RunConfig`s.

Option names follow NVIDIA AIPerf (and `vllm bench serve` where AIPerf has none), so command lines
carry over. `--concurrency` and `--request-rate` accept comma-separated lists: a sweep, one run per
value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from cyclopts import Group, Parameter
from pydantic import ValidationError

from aiperf_hpc.config import (
    ClusterConfig,
    CustomDatasetType,
    EndpointConfig,
    EndpointType,
    InputConfig,
    LauncherKind,
    LiveConfig,
    LoadConfig,
    MetricsConfig,
    OnWorkerLoss,
    PublicDataset,
    RequestRateMode,
    RunConfig,
    ServerMetricsConfig,
    UiMode,
)
from aiperf_hpc.core.goodput import parse_goodput_spec
from aiperf_hpc.errors import UsageError
from aiperf_hpc.profile_args import API_KEY_ENV

ENDPOINT = Group("Endpoint", sort_key=0)
LOAD = Group("Load", sort_key=1)
SCHEDULE = Group("Trace replay and cancellation", sort_key=2)
INPUTS = Group("Inputs", sort_key=3)
CONVERSATIONS = Group("Conversations", sort_key=4)
OUTPUT = Group("Results and engine", sort_key=5)
CLUSTER = Group("Slurm", sort_key=6)

_NO_EMPTY = {"negative_iterable": ()}


@Parameter(name="*", group=ENDPOINT)
@dataclass(frozen=True)
class EndpointOptions:
    model: Annotated[str, Parameter(name=["--model", "-m"], help="Model name sent in requests.")]
    url: Annotated[str, Parameter(name=["--url", "-u"], help="Server base URL.")] = "http://127.0.0.1:8000"
    endpoint_type: EndpointType = "chat"
    streaming: Annotated[bool, Parameter(help="Stream responses (SSE); needed for TTFT and ITL.")] = False
    api_key: Annotated[
        str | None,
        Parameter(
            env_var=API_KEY_ENV,
            help="Sent as 'Authorization: Bearer KEY'. Prefer the environment variable: ps shows command lines.",
        ),
    ] = None
    header: Annotated[
        list[str] | None, Parameter(name=["--header", "-H"], help="Extra header 'Name:Value' (repeat).", **_NO_EMPTY)
    ] = None
    extra_inputs: Annotated[
        list[str] | None,
        Parameter(help="Extra body field 'key:value'; the value is parsed as JSON when it is JSON.", **_NO_EMPTY),
    ] = None
    request_timeout_seconds: float = 600.0


@Parameter(name="*", group=LOAD)
@dataclass(frozen=True)
class LoadOptions:
    concurrency: Annotated[
        str | None, Parameter(help="Requests in flight at once; with a rate, a cap. A list '1,4,16' sweeps.")
    ] = None
    request_rate: Annotated[
        str | None, Parameter(help="Requests per second on an absolute schedule. A list '10,20' sweeps.")
    ] = None
    request_rate_mode: RequestRateMode = "poisson"
    burstiness: Annotated[float, Parameter(help="Gamma shape (1 = Poisson, lower = burstier); needs gamma.")] = 1.0
    ramp_up_duration: Annotated[float, Parameter(help="Seconds to ramp the concurrency or rate up linearly.")] = 0.0
    request_count: Annotated[int | None, Parameter(help="Requests to send (default: 10 x concurrency).")] = None
    benchmark_duration: Annotated[float | None, Parameter(help="Seconds to send requests for.")] = None
    benchmark_grace_period: Annotated[
        float, Parameter(help="Seconds in-flight requests may finish after the duration.")
    ] = 30.0
    warmup_request_count: Annotated[int, Parameter(help="Requests sent first, left out of results.")] = 0
    warmup_duration: Annotated[float | None, Parameter(help="Seconds of warmup, left out of results.")] = None


@Parameter(name="*", group=SCHEDULE)
@dataclass(frozen=True)
class ScheduleOptions:
    fixed_schedule: Annotated[bool, Parameter(help="Replay the input file's timestamps (ms).")] = False
    fixed_schedule_start_offset: Annotated[float | None, Parameter(help="Trace ms to start at.")] = None
    fixed_schedule_end_offset: Annotated[float | None, Parameter(help="Trace ms to stop at.")] = None
    fixed_schedule_speedup: Annotated[float, Parameter(help="Replay speed factor (2 = twice as fast).")] = 1.0
    request_cancellation_rate: Annotated[float, Parameter(help="Percent of requests to cancel.")] = 0.0
    request_cancellation_delay: Annotated[float, Parameter(help="Seconds after sending to cancel them.")] = 0.0


@Parameter(name="*", group=INPUTS)
@dataclass(frozen=True)
class InputOptions:
    isl: Annotated[int, Parameter(name=["--isl", "--synthetic-input-tokens-mean"], help="Mean prompt tokens.")] = 550
    isl_stddev: Annotated[float, Parameter(name=["--isl-stddev", "--synthetic-input-tokens-stddev"])] = 0.0
    osl: Annotated[
        int | None, Parameter(name=["--osl", "--output-tokens-mean"], help="Mean max_tokens (default: server's).")
    ] = None
    osl_stddev: Annotated[float, Parameter(name=["--osl-stddev", "--output-tokens-stddev"])] = 0.0
    tokenizer: Annotated[
        str | None, Parameter(help="Hugging Face tokenizer: local dir or name (default: the bundled one).")
    ] = None
    num_dataset_entries: Annotated[int, Parameter(help="Distinct synthetic prompts, used in turn.")] = 100
    prompt_prefix_pool_size: Annotated[int, Parameter(help="Shared prefixes to draw from (prefix caching).")] = 0
    prompt_prefix_length: Annotated[int, Parameter(help="Tokens per shared prefix.")] = 0
    isl_block_size: Annotated[int, Parameter(help="Tokens per trace hash_ids block.")] = 512
    input_file: Annotated[Path | None, Parameter(help="Dataset file (JSONL, or ShareGPT JSON).")] = None
    custom_dataset_type: CustomDatasetType | None = None
    public_dataset: Annotated[PublicDataset | None, Parameter(help="Format of --input-file (nothing downloaded).")] = (
        None
    )
    random_seed: int = 0


@Parameter(name="*", group=CONVERSATIONS)
@dataclass(frozen=True)
class ConversationOptions:
    conversation_num: Annotated[int | None, Parameter(help="Synthetic multi-turn conversations.")] = None
    conversation_turn_mean: int = 1
    conversation_turn_stddev: float = 0.0
    conversation_turn_delay_mean: Annotated[float, Parameter(help="ms between an answer and the next turn.")] = 0.0
    conversation_turn_delay_stddev: float = 0.0


@Parameter(name="*", group=OUTPUT)
@dataclass(frozen=True)
class OutputOptions:
    goodput: Annotated[
        str | None, Parameter(help="SLOs in ms, e.g. 'time_to_first_token:200 inter_token_latency:20'.")
    ] = None
    failure_threshold: Annotated[
        float | None, Parameter(help="Stop early, with partial results, once more than this % of requests failed.")
    ] = None
    workers: Annotated[int | None, Parameter(help="Worker processes (default: CPU cores, at most the cap).")] = None
    server_metrics_url: Annotated[
        list[str] | None,
        Parameter(help="Prometheus /metrics to scrape every second (repeat; default: URL/metrics).", **_NO_EMPTY),
    ] = None
    server_metrics: Annotated[
        bool, Parameter(help="Scrape the server's /metrics during the run.", negative="--no-server-metrics")
    ] = True
    slice_duration: Annotated[
        float | None, Parameter(help="Also write results per window of this many seconds (by request start).")
    ] = None
    artifact_dir: Annotated[
        Path | None, Parameter(help="Where results go (default: artifacts/MODEL-ENDPOINT-...).")
    ] = None
    ui: Annotated[
        UiMode, Parameter(help="Progress on stderr: live view, a plain line every 5 s, none; auto: live on a terminal.")
    ] = "auto"
    metrics_port: Annotated[
        int | None, Parameter(help="Serve the run's live figures at http://HOST:PORT/metrics (0: a free port).")
    ] = None
    metrics_host: Annotated[str, Parameter(help="Address the live /metrics listens on.")] = "127.0.0.1"


@Parameter(name="*", group=CLUSTER)
@dataclass(frozen=True)
class ClusterOptions:
    launcher: Annotated[LauncherKind, Parameter(help="auto: slurm inside a multi-task allocation, else local.")] = (
        "auto"
    )
    nodes: Annotated[int | None, Parameter(help="Nodes of the allocation to put workers on (default: all).")] = None
    workers_per_node: Annotated[
        int | None, Parameter(help="Workers per node (default: the allocation's tasks per node).")
    ] = None
    zmq_host: Annotated[
        str | None, Parameter(help="Address the nodes reach this host at (default: its name, resolved).")
    ] = None
    srun_overlap: Annotated[
        bool,
        Parameter(
            name=["--overlap", "--srun-overlap"],
            negative=(),
            help="srun --overlap for the workers' step: share the allocation with running steps.",
        ),
    ] = False
    on_worker_loss: Annotated[OnWorkerLoss, Parameter(help="Go on with the other workers, or stop.")] = "continue"


# pydantic field -> the option a user typed, so validation errors name the option.
_OPTION_NAMES = {
    "request_timeout_s": "--request-timeout-seconds",
    "isl_mean": "--isl",
    "osl_mean": "--osl",
    "num_entries": "--num-dataset-entries",
    "benchmark_duration_s": "--benchmark-duration",
    "grace_period_s": "--benchmark-grace-period",
    "warmup_duration_s": "--warmup-duration",
    "ramp_up_duration_s": "--ramp-up-duration",
    "fixed_schedule_start_offset_ms": "--fixed-schedule-start-offset",
    "fixed_schedule_end_offset_ms": "--fixed-schedule-end-offset",
    "request_cancellation_delay_s": "--request-cancellation-delay",
    "conversation_turn_delay_mean_ms": "--conversation-turn-delay-mean",
    "conversation_turn_delay_stddev_ms": "--conversation-turn-delay-stddev",
    "headers": "--header",
    "failure_threshold_pct": "--failure-threshold",
    "slice_duration_s": "--slice-duration",
    "urls": "--server-metrics-url",
}


def build_run_configs(
    endpoint: EndpointOptions,
    load: LoadOptions,
    schedule: ScheduleOptions,
    inputs: InputOptions,
    conversations: ConversationOptions,
    output: OutputOptions,
    cluster: ClusterOptions,
) -> list[tuple[str, RunConfig]]:
    """One `(label, RunConfig)` per run: a single run, or one per value of a swept option."""
    concurrencies = _parse_list(load.concurrency, "--concurrency", int)
    rates = _parse_list(load.request_rate, "--request-rate", float)
    if len(concurrencies) > 1 and len(rates) > 1:
        raise UsageError("sweep one of --concurrency and --request-rate, not both")
    goodput = parse_goodput_spec(output.goodput) if output.goodput is not None else {}
    base_dir = output.artifact_dir or _default_artifact_dir(
        endpoint.model, endpoint.endpoint_type, load, schedule.fixed_schedule
    )
    concurrency = concurrencies[0] if concurrencies else None
    rate = rates[0] if rates else None
    if len(concurrencies) > 1:
        points = [(f"concurrency{c}", c, rate) for c in concurrencies]
    elif len(rates) > 1:
        points = [(f"request_rate{r:g}", concurrency, r) for r in rates]
    else:
        points = [("", concurrency, rate)]
    return [
        (
            label,
            _run_config(
                endpoint, load, schedule, inputs, conversations, output, cluster, c, r, goodput, base_dir / label
            ),
        )
        for label, c, r in points
    ]


def _run_config(
    endpoint: EndpointOptions,
    load: LoadOptions,
    schedule: ScheduleOptions,
    inputs: InputOptions,
    conversations: ConversationOptions,
    output: OutputOptions,
    cluster: ClusterOptions,
    concurrency: int | None,
    rate: float | None,
    goodput: dict[str, float],
    artifact_dir: Path,
) -> RunConfig:
    try:
        return RunConfig(
            endpoint=EndpointConfig(
                url=endpoint.url,
                model=endpoint.model,
                endpoint_type=endpoint.endpoint_type,
                streaming=endpoint.streaming,
                api_key=endpoint.api_key,
                headers=_parse_pairs(endpoint.header or [], "--header", json_values=False),
                extra_inputs=_parse_pairs(endpoint.extra_inputs or [], "--extra-inputs", json_values=True),
                request_timeout_s=endpoint.request_timeout_seconds,
            ),
            inputs=InputConfig(
                isl_mean=inputs.isl,
                isl_stddev=inputs.isl_stddev,
                osl_mean=inputs.osl,
                osl_stddev=inputs.osl_stddev,
                num_entries=inputs.num_dataset_entries,
                random_seed=inputs.random_seed,
                tokenizer=inputs.tokenizer,
                prompt_prefix_pool_size=inputs.prompt_prefix_pool_size,
                prompt_prefix_length=inputs.prompt_prefix_length,
                isl_block_size=inputs.isl_block_size,
                input_file=inputs.input_file,
                custom_dataset_type=inputs.custom_dataset_type,
                public_dataset=inputs.public_dataset,
                conversation_num=conversations.conversation_num,
                conversation_turn_mean=conversations.conversation_turn_mean,
                conversation_turn_stddev=conversations.conversation_turn_stddev,
                conversation_turn_delay_mean_ms=conversations.conversation_turn_delay_mean,
                conversation_turn_delay_stddev_ms=conversations.conversation_turn_delay_stddev,
            ),
            load=LoadConfig(
                concurrency=concurrency,
                request_rate=rate,
                request_rate_mode=load.request_rate_mode,
                burstiness=load.burstiness,
                ramp_up_duration_s=load.ramp_up_duration,
                request_count=load.request_count,
                benchmark_duration_s=load.benchmark_duration,
                grace_period_s=load.benchmark_grace_period,
                warmup_request_count=load.warmup_request_count,
                warmup_duration_s=load.warmup_duration,
                fixed_schedule=schedule.fixed_schedule,
                fixed_schedule_start_offset_ms=schedule.fixed_schedule_start_offset,
                fixed_schedule_end_offset_ms=schedule.fixed_schedule_end_offset,
                fixed_schedule_speedup=schedule.fixed_schedule_speedup,
                request_cancellation_rate=schedule.request_cancellation_rate,
                request_cancellation_delay_s=schedule.request_cancellation_delay,
            ),
            metrics=MetricsConfig(
                goodput=goodput, failure_threshold_pct=output.failure_threshold, slice_duration_s=output.slice_duration
            ),
            cluster=ClusterConfig(
                launcher=cluster.launcher,
                nodes=cluster.nodes,
                workers_per_node=cluster.workers_per_node,
                zmq_host=cluster.zmq_host,
                srun_overlap=cluster.srun_overlap,
                on_worker_loss=cluster.on_worker_loss,
            ),
            server_metrics=ServerMetricsConfig(enabled=output.server_metrics, urls=output.server_metrics_url or []),
            live=LiveConfig(ui=output.ui, metrics_port=output.metrics_port, metrics_host=output.metrics_host),
            workers=output.workers or 0,
            artifact_dir=artifact_dir,
        )
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc)) from None


def _parse_list(text: str | None, option: str, kind: type[int] | type[float]) -> list[Any]:
    if text is None:
        return []
    values = []
    for part in text.split(","):
        try:
            value = kind(part.strip())
        except ValueError:
            raise UsageError(f"{option} expects a number or a comma-separated list, got {text!r}") from None
        if value <= 0:
            raise UsageError(f"{option} values must be positive, got {part.strip()}")
        values.append(value)
    return values


def _parse_pairs(items: list[str], option: str, *, json_values: bool) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects 'name:value', got {item!r}")
        value = value.strip()
        if json_values:
            try:
                pairs[key.strip()] = orjson.loads(value)
            except orjson.JSONDecodeError:
                pairs[key.strip()] = value
        else:
            pairs[key.strip()] = value
    return pairs


def _default_artifact_dir(model: str, endpoint_type: str, load: LoadOptions, fixed_schedule: bool) -> Path:
    safe_model = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    if fixed_schedule:
        mode = "fixed-schedule"
    elif load.request_rate is not None:
        mode = f"rate{load.request_rate.replace(',', '_')}"
    else:
        mode = f"concurrency{(load.concurrency or '1').replace(',', '_')}"
    return Path("artifacts") / f"{safe_model}-{endpoint_type}-{mode}"


def describe_validation_error(exc: ValidationError, option_names: Mapping[str, str] = _OPTION_NAMES) -> str:
    """One line naming the option a user typed (not the pydantic field) and what is wrong.
    `option_names` maps the fields whose option is not simply the field's name with dashes."""
    first = exc.errors()[0]
    field = str(first["loc"][-1]) if first["loc"] else ""
    option = option_names.get(field, f"--{field.replace('_', '-')}" if field else "options")
    message = str(first["msg"]).removeprefix("Value error, ")
    if not field:
        return message
    return f"invalid {option}: {message}"
