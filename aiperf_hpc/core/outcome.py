"""How a run ended, and the one decision of the process exit code.

Pure. The controller does the waiting and the sending; these functions say what each result of it
means for the run's status: `RunEnding` (the status so far, and why it failed), then one of the
`outcome_*` functions for the `RunOutcome`, then `decide_exit_code`. A sequence of runs (a sweep,
a recipe's benchmarks) combines their exit codes with `CombinedExitCode`.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Literal

from aiperf_hpc.exit_codes import ExitCode

RunStatus = Literal["completed", "failed", "interrupted"]

# A run that ends with one of these ends a sequence of runs there: the user stopped it, or its
# input is wrong for every run that follows.
SEQUENCE_STOPPING_CODES = frozenset({ExitCode.INTERRUPTED, ExitCode.TERMINATED, ExitCode.USAGE})


@dataclass(frozen=True, slots=True)
class RunOutcome:
    status: RunStatus
    error: str | None = None
    signal_number: int | None = None
    request_count: int = 0  # profiling records received
    success_count: int = 0
    results_written: bool = False
    usage_error: bool = False  # the failure was the user's input (a bad dataset file, ...)


@dataclass(frozen=True, slots=True)
class RunEnding:
    """The run's status while it ends: how profiling ended, then what collecting records found.
    Only a completed run can still fail; a failed or interrupted one keeps its status and error."""

    status: RunStatus
    error: str | None = None

    def with_records_missing(self, missing: int, total: int) -> RunEnding:
        """The wait for every record ended without them all: `missing` of the `total` issued."""
        if self.status != "completed":
            return self
        return RunEnding("failed", f"{missing} of {total} records never arrived")

    def needs_server_check(self, errors: int) -> bool:
        """Ask the server once more whether it is there: a completed run that saw request errors."""
        return self.status == "completed" and errors > 0

    def with_server_check(self, gone: str | None) -> RunEnding:
        """`gone`: why the server no longer answers, or None when it does."""
        if self.status != "completed" or not gone:
            return self
        return RunEnding("failed", gone)


def run_happened(*, records_configured: bool, usage_error: bool) -> bool:
    """Whether there is anything to collect and report: the records manager was configured and the
    input was not refused."""
    return records_configured and not usage_error


def outcome_without_run(ending: RunEnding, *, signal_number: int | None, usage_error: bool) -> RunOutcome:
    """No run happened (`run_happened` is False): nothing was measured, so nothing completed."""
    return RunOutcome(
        status="failed" if ending.status == "completed" else ending.status,
        error=ending.error,
        signal_number=signal_number,
        usage_error=usage_error,
    )


def outcome_without_results(ending: RunEnding, why: str, *, signal_number: int | None, usage_error: bool) -> RunOutcome:
    """The records manager wrote no results (`why`: the wait that failed); an earlier error wins."""
    return RunOutcome(
        status="failed" if ending.status == "completed" else ending.status,
        error=ending.error or f"results not written: {why}",
        signal_number=signal_number,
        usage_error=usage_error,
    )


def outcome_with_results(
    ending: RunEnding, *, request_count: int, success_count: int, signal_number: int | None, usage_error: bool
) -> RunOutcome:
    """The results were written, with these profiling record and success counts."""
    return RunOutcome(
        status=ending.status,
        error=ending.error,
        signal_number=signal_number,
        request_count=request_count,
        success_count=success_count,
        results_written=True,
        usage_error=usage_error,
    )


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


@dataclass
class CombinedExitCode:
    """The exit code of a sequence of runs: the first non-zero one, or the code of the run that
    stopped the sequence (`SEQUENCE_STOPPING_CODES`)."""

    code: ExitCode = ExitCode.SUCCESS

    def add(self, code: ExitCode) -> bool:
        """Count one run's code, in order. True when the sequence stops here (`code` is then the result)."""
        if code in SEQUENCE_STOPPING_CODES:
            self.code = code
            return True
        if self.code is ExitCode.SUCCESS:
            self.code = code
        return False
