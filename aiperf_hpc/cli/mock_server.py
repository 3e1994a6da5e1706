"""`aiperf-hpc mock-server`: the bundled OpenAI-compatible server, for runs without a GPU."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter
from pydantic import ValidationError

from aiperf_hpc.errors import RunError, UsageError

# MockServerConfig field -> the mock-server option a user typed.
_MOCK_OPTION_NAMES: dict[tuple[str, ...], str] = {
    ("default_output_tokens",): "--output-tokens",
    ("error_statuses",): "--error-status",
    ("faults",): "--fault",
    ("model_names",): "--model-name",
    ("send_usage",): "--usage",
}


def mock_server(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    ttft_ms: Annotated[float, Parameter(help="Time to first token.")] = 0.0,
    itl_ms: Annotated[float, Parameter(help="Time between tokens.")] = 0.0,
    output_tokens: Annotated[int, Parameter(help="Tokens per response when a request sets no max_tokens.")] = 16,
    error_rate: Annotated[float, Parameter(help="Fraction of requests answered with --error-status.")] = 0.0,
    error_status: Annotated[
        str, Parameter(help="Status of injected errors; a comma-separated list draws among them (429,503).")
    ] = "500",
    fault: Annotated[
        list[str] | None,
        Parameter(
            negative_iterable=(),
            help="KIND=FRACTION (repeat): disconnect, truncate, malformed, no-done, stall, non-json.",
        ),
    ] = None,
    model_name: Annotated[
        list[str] | None, Parameter(negative_iterable=(), help="Model names served (repeat).")
    ] = None,
    random_seed: int = 0,
    usage: Annotated[bool, Parameter(help="Report token usage (--no-usage: never, like some servers).")] = True,
    zero_work: Annotated[
        bool, Parameter(negative=(), help="Answer fixed bytes in one write: the client's own ceiling (benchmarks).")
    ] = False,
) -> int:
    """Run the bundled OpenAI-compatible mock server (no GPU needed)."""
    from aiperf_hpc.mock_server.config import MockServerConfig
    from aiperf_hpc.mock_server.faults import parse_fault, parse_statuses
    from aiperf_hpc.mock_server.server import run_mock_server
    from aiperf_hpc.options import describe_validation_error

    try:
        statuses = parse_statuses(error_status)
        faults = dict(parse_fault(spec) for spec in fault or [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if len(faults) < len(fault or []):
        raise UsageError("--fault names the same kind twice")
    try:
        config = MockServerConfig(
            ttft_ms=ttft_ms,
            itl_ms=itl_ms,
            default_output_tokens=output_tokens,
            error_rate=error_rate,
            error_statuses=statuses,
            faults=faults,
            random_seed=random_seed,
            model_names=model_name or ["mock-model"],
            send_usage=usage,
            zero_work=zero_work,
        )
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, _MOCK_OPTION_NAMES)) from None
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {port}")
    try:
        run_mock_server(config, host=host, port=port)
    except OSError as exc:
        raise RunError(f"mock server cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0
