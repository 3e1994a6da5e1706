"""How a run ended, and the one decision of the process exit code."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Literal

from aiperf_hpc.exit_codes import ExitCode

RunStatus = Literal["completed", "failed", "interrupted"]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    status: RunStatus
    error: str | None = None
    signal_number: int | None = None
    request_count: int = 0  # profiling records received
    success_count: int = 0
    results_written: bool = False
    usage_error: bool = False  # the failure was the user's input (a bad dataset file, ...)


def decide_exit_code(outcome: RunOutcome) -> ExitCode:
    """0 only for a completed run with results and at least one success (or nothing to send)."""
    if outcome.status == "interrupted":
        return ExitCode.TERMINATED if outcome.signal_number == signal.SIGTERM else ExitCode.INTERRUPTED
    if outcome.usage_error:
        return ExitCode.USAGE
    if outcome.status == "failed" or not outcome.results_written:
        return ExitCode.RUN_FAILED
    if outcome.request_count > 0 and outcome.success_count == 0:
        return ExitCode.RUN_FAILED
    return ExitCode.SUCCESS
