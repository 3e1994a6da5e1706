from __future__ import annotations

import signal

import pytest

from aiperf_hpc.core.outcome import RunOutcome, decide_exit_code
from aiperf_hpc.exit_codes import ExitCode


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (RunOutcome("completed", request_count=10, success_count=10, results_written=True), ExitCode.SUCCESS),
        (RunOutcome("completed", request_count=10, success_count=1, results_written=True), ExitCode.SUCCESS),
        (RunOutcome("completed", request_count=10, success_count=0, results_written=True), ExitCode.RUN_FAILED),
        (RunOutcome("completed", request_count=10, success_count=10, results_written=False), ExitCode.RUN_FAILED),
        (RunOutcome("failed", error="x", request_count=9, success_count=9, results_written=True), ExitCode.RUN_FAILED),
        (RunOutcome("interrupted", signal_number=signal.SIGINT, results_written=True), ExitCode.INTERRUPTED),
        (RunOutcome("interrupted", signal_number=signal.SIGTERM), ExitCode.TERMINATED),
    ],
)
def test_decide_exit_code(outcome: RunOutcome, code: ExitCode) -> None:
    assert decide_exit_code(outcome) is code
