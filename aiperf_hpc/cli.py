"""The `aiperf-hpc` command: parse options, build a validated config, hand over, exit.

This is the only module that calls `sys.exit`. Usage errors exit 2 with one line; runtime errors
exit 1 with one line; a run's exit code comes from `core.outcome.decide_exit_code`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from cyclopts import App, CycloptsError, Group, Parameter
from pydantic import ValidationError
from rich.console import Console

from aiperf_hpc import __version__
from aiperf_hpc.config import EndpointConfig, InputConfig, LoadConfig, RunConfig
from aiperf_hpc.errors import AiperfError, RunError, UsageError
from aiperf_hpc.exit_codes import ExitCode

app = App(
    name="aiperf-hpc",
    help="Benchmark OpenAI-compatible LLM inference servers, from a laptop to a Slurm allocation.",
    version=__version__,
)

ENDPOINT = Group("Endpoint", sort_key=0)
LOAD = Group("Load", sort_key=1)
INPUTS = Group("Inputs", sort_key=2)
OUTPUT = Group("Output and engine", sort_key=3)

# pydantic field -> the option a user typed, so validation errors name the option.
_OPTION_NAMES = {
    "url": "--url",
    "model": "--model",
    "request_timeout_s": "--request-timeout-seconds",
    "isl_mean": "--isl",
    "isl_stddev": "--isl-stddev",
    "osl_mean": "--osl",
    "osl_stddev": "--osl-stddev",
    "num_entries": "--num-dataset-entries",
    "concurrency": "--concurrency",
    "request_count": "--request-count",
    "benchmark_duration_s": "--benchmark-duration",
    "grace_period_s": "--benchmark-grace-period",
    "warmup_request_count": "--warmup-request-count",
    "workers": "--workers",
}


@app.command
def profile(
    *,
    model: Annotated[str, Parameter(name=["--model", "-m"], group=ENDPOINT, help="Model name sent in requests.")],
    url: Annotated[str, Parameter(name=["--url", "-u"], group=ENDPOINT, help="Server base URL.")] = (
        "http://127.0.0.1:8000"
    ),
    endpoint_type: Annotated[Literal["chat", "completions"], Parameter(group=ENDPOINT)] = "chat",
    streaming: Annotated[bool, Parameter(group=ENDPOINT, help="Stream responses (SSE); needed for TTFT/ITL.")] = False,
    api_key: Annotated[str | None, Parameter(group=ENDPOINT, help="Sent as 'Authorization: Bearer KEY'.")] = None,
    header: Annotated[
        list[str] | None,
        Parameter(
            name=["--header", "-H"], group=ENDPOINT, negative_iterable=(), help="Extra header 'Name:Value' (repeat)."
        ),
    ] = None,
    extra_inputs: Annotated[
        list[str] | None,
        Parameter(
            group=ENDPOINT,
            negative_iterable=(),
            help="Extra request body field 'key:value' (value parsed as JSON when it is JSON).",
        ),
    ] = None,
    request_timeout_seconds: Annotated[float, Parameter(group=ENDPOINT)] = 600.0,
    concurrency: Annotated[int, Parameter(group=LOAD, help="Requests in flight at once.")] = 1,
    request_count: Annotated[
        int | None, Parameter(group=LOAD, help="Requests to send (default: 10 x concurrency, at least 10).")
    ] = None,
    benchmark_duration: Annotated[float | None, Parameter(group=LOAD, help="Seconds to send requests for.")] = None,
    benchmark_grace_period: Annotated[
        float, Parameter(group=LOAD, help="Seconds in-flight requests may finish after --benchmark-duration.")
    ] = 30.0,
    warmup_request_count: Annotated[int, Parameter(group=LOAD, help="Requests sent first, left out of results.")] = 0,
    isl: Annotated[
        int,
        Parameter(name=["--isl", "--synthetic-input-tokens-mean"], group=INPUTS, help="Mean prompt length."),
    ] = 550,
    isl_stddev: Annotated[
        float, Parameter(name=["--isl-stddev", "--synthetic-input-tokens-stddev"], group=INPUTS)
    ] = 0.0,
    osl: Annotated[
        int | None,
        Parameter(name=["--osl", "--output-tokens-mean"], group=INPUTS, help="Mean max_tokens (default: server's)."),
    ] = None,
    osl_stddev: Annotated[float, Parameter(name=["--osl-stddev", "--output-tokens-stddev"], group=INPUTS)] = 0.0,
    num_dataset_entries: Annotated[int, Parameter(group=INPUTS, help="Distinct prompts, used in turn.")] = 100,
    random_seed: Annotated[int, Parameter(group=INPUTS)] = 0,
    workers: Annotated[
        int | None,
        Parameter(group=OUTPUT, help="Worker processes (default: CPU cores, at most concurrency)."),
    ] = None,
    artifact_dir: Annotated[
        Path | None, Parameter(group=OUTPUT, help="Where results go (default: artifacts/MODEL-ENDPOINT-cN).")
    ] = None,
) -> int:
    """Measure a server: TTFT, ITL, latency and throughput under a given load."""
    from aiperf_hpc.run import run_profile

    try:
        config = RunConfig(
            endpoint=EndpointConfig(
                url=url,
                model=model,
                endpoint_type=endpoint_type,
                streaming=streaming,
                api_key=api_key,
                headers=_parse_pairs(header or [], "--header", json_values=False),
                extra_inputs=_parse_pairs(extra_inputs or [], "--extra-inputs", json_values=True),
                request_timeout_s=request_timeout_seconds,
            ),
            inputs=InputConfig(
                isl_mean=isl,
                isl_stddev=isl_stddev,
                osl_mean=osl,
                osl_stddev=osl_stddev,
                num_entries=num_dataset_entries,
                random_seed=random_seed,
            ),
            load=LoadConfig(
                concurrency=concurrency,
                request_count=request_count,
                benchmark_duration_s=benchmark_duration,
                grace_period_s=benchmark_grace_period,
                warmup_request_count=warmup_request_count,
            ),
            workers=workers or 0,
            artifact_dir=artifact_dir or _default_artifact_dir(model, endpoint_type, concurrency),
        )
    except ValidationError as exc:
        raise UsageError(_describe_validation_error(exc)) from None
    return int(run_profile(config))


@app.command(name="mock-server")
def mock_server(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    ttft_ms: Annotated[float, Parameter(help="Time to first token.")] = 0.0,
    itl_ms: Annotated[float, Parameter(help="Time between tokens.")] = 0.0,
    output_tokens: Annotated[int, Parameter(help="Tokens per response when a request sets no max_tokens.")] = 16,
    error_rate: Annotated[float, Parameter(help="Fraction of requests answered with --error-status.")] = 0.0,
    error_status: int = 500,
    model_name: Annotated[
        list[str] | None, Parameter(negative_iterable=(), help="Model names served (repeat).")
    ] = None,
    random_seed: int = 0,
) -> int:
    """Run the bundled OpenAI-compatible mock server (no GPU needed)."""
    from aiperf_hpc.mock_server.config import MockServerConfig
    from aiperf_hpc.mock_server.server import run_mock_server

    try:
        config = MockServerConfig(
            ttft_ms=ttft_ms,
            itl_ms=itl_ms,
            default_output_tokens=output_tokens,
            error_rate=error_rate,
            error_status=error_status,
            random_seed=random_seed,
            model_names=model_name or ["mock-model"],
        )
    except ValidationError as exc:
        raise UsageError(_describe_validation_error(exc)) from None
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {port}")
    try:
        run_mock_server(config, host=host, port=port)
    except OSError as exc:
        raise RunError(f"mock server cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0


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


def _default_artifact_dir(model: str, endpoint_type: str, concurrency: int) -> Path:
    safe_model = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    return Path("artifacts") / f"{safe_model}-{endpoint_type}-concurrency{concurrency}"


def _describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][-1]) if first["loc"] else ""
    option = _OPTION_NAMES.get(field, f"--{field.replace('_', '-')}" if field else "options")
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"invalid {option}: {message}"


def main(argv: list[str] | None = None) -> None:
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        result = app(argv, exit_on_error=False, print_error=False, result_action="return_value")
    except CycloptsError as exc:
        text = " ".join(str(exc).split())
        errors.print(f"aiperf-hpc: error: {text}", markup=False)
        sys.exit(ExitCode.USAGE)
    except UsageError as exc:
        errors.print(f"aiperf-hpc: error: {exc}", markup=False)
        sys.exit(ExitCode.USAGE)
    except AiperfError as exc:
        errors.print(f"aiperf-hpc: error: {exc}", markup=False)
        sys.exit(ExitCode.RUN_FAILED)
    except KeyboardInterrupt:
        errors.print("aiperf-hpc: interrupted", markup=False)
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(result if isinstance(result, int) else ExitCode.SUCCESS)


if __name__ == "__main__":
    main()
