"""The `aiperf-hpc` command: parse options, build a validated config, hand over, exit.

This is the only module that calls `sys.exit`. Usage errors exit 2 with one line; runtime errors
exit 1 with one line; a run's exit code comes from `core.outcome.decide_exit_code`.
"""

from __future__ import annotations

import sys
from typing import Annotated

from cyclopts import App, CycloptsError, Parameter
from pydantic import ValidationError
from rich.console import Console

from aiperf_hpc import __version__
from aiperf_hpc.cli_options import (
    ClusterOptions,
    ConversationOptions,
    EndpointOptions,
    InputOptions,
    LoadOptions,
    OutputOptions,
    ScheduleOptions,
    build_run_configs,
    describe_validation_error,
)
from aiperf_hpc.errors import AiperfError, RunError, UsageError
from aiperf_hpc.exit_codes import ExitCode

app = App(
    name="aiperf-hpc",
    help="Benchmark OpenAI-compatible LLM inference servers, from a laptop to a Slurm allocation.",
    version=__version__,
)


@app.command
def profile(
    *,
    endpoint: EndpointOptions,
    load: LoadOptions = LoadOptions(),
    schedule: ScheduleOptions = ScheduleOptions(),
    inputs: InputOptions = InputOptions(),
    conversations: ConversationOptions = ConversationOptions(),
    output: OutputOptions = OutputOptions(),
    cluster: ClusterOptions = ClusterOptions(),
) -> int:
    """Measure a server: TTFT, ITL, latency, throughput and goodput under a given load."""
    from aiperf_hpc.run import run_profiles

    return int(run_profiles(build_run_configs(endpoint, load, schedule, inputs, conversations, output, cluster)))


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
    usage: Annotated[bool, Parameter(help="Report token usage (--no-usage: never, like some servers).")] = True,
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
            send_usage=usage,
        )
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc)) from None
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {port}")
    try:
        run_mock_server(config, host=host, port=port)
    except OSError as exc:
        raise RunError(f"mock server cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0


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
