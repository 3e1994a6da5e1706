"""The run-status decisions of the controller's ending, and exit codes combined over a sequence."""

from __future__ import annotations

import signal

import pytest

from aiperf_hpc.core.outcome import (
    CombinedExitCode,
    RunEnding,
    RunOutcome,
    decide_exit_code,
    outcome_with_results,
    outcome_without_results,
    outcome_without_run,
    run_happened,
)
from aiperf_hpc.exit_codes import ExitCode

COMPLETED = RunEnding("completed")
FAILED = RunEnding("failed", "service timing failed: boom")
INTERRUPTED = RunEnding("interrupted")


def test_missing_records_fail_a_completed_run_and_say_how_many() -> None:
    assert COMPLETED.with_records_missing(3, 10) == RunEnding("failed", "3 of 10 records never arrived")
    assert FAILED.with_records_missing(3, 10) is FAILED  # the first error stays
    assert INTERRUPTED.with_records_missing(3, 10) is INTERRUPTED


def test_the_server_is_checked_again_only_after_errors_in_a_completed_run() -> None:
    assert COMPLETED.needs_server_check(errors=1)
    assert not COMPLETED.needs_server_check(errors=0)
    assert not FAILED.needs_server_check(errors=5)
    assert not INTERRUPTED.needs_server_check(errors=5)


def test_a_server_gone_fails_a_completed_run_with_its_reason() -> None:
    gone = "the server stopped answering during the run: connection refused"
    assert COMPLETED.with_server_check(gone) == RunEnding("failed", gone)
    assert COMPLETED.with_server_check(None) is COMPLETED
    assert FAILED.with_server_check(gone) is FAILED


def test_no_run_happened_without_records_or_with_bad_input() -> None:
    assert run_happened(records_configured=True, usage_error=False)
    assert not run_happened(records_configured=False, usage_error=False)
    assert not run_happened(records_configured=True, usage_error=True)


@pytest.mark.parametrize(
    ("ending", "signal_number", "usage_error", "expected"),
    [
        (COMPLETED, None, False, RunOutcome("failed")),
        (FAILED, None, True, RunOutcome("failed", FAILED.error, usage_error=True)),
        (INTERRUPTED, signal.SIGINT, False, RunOutcome("interrupted", signal_number=signal.SIGINT)),
    ],
)
def test_without_a_run_nothing_completed(
    ending: RunEnding, signal_number: int | None, usage_error: bool, expected: RunOutcome
) -> None:
    assert outcome_without_run(ending, signal_number=signal_number, usage_error=usage_error) == expected


def test_results_not_written_fail_the_run_unless_an_earlier_error_says_why() -> None:
    why = "timed out after 120 s waiting for ResultsReady from records"
    outcome = outcome_without_results(COMPLETED, why, signal_number=None, usage_error=False)
    assert outcome == RunOutcome("failed", f"results not written: {why}")
    assert outcome_without_results(FAILED, why, signal_number=None, usage_error=False).error == FAILED.error
    interrupted = outcome_without_results(INTERRUPTED, why, signal_number=signal.SIGTERM, usage_error=False)
    assert (interrupted.status, decide_exit_code(interrupted)) == ("interrupted", ExitCode.TERMINATED)


def test_written_results_carry_the_counts_and_the_ending() -> None:
    outcome = outcome_with_results(COMPLETED, request_count=10, success_count=9, signal_number=None, usage_error=False)
    assert outcome == RunOutcome("completed", request_count=10, success_count=9, results_written=True)
    assert decide_exit_code(outcome) is ExitCode.SUCCESS
    failed = outcome_with_results(FAILED, request_count=4, success_count=4, signal_number=None, usage_error=False)
    assert (failed.error, decide_exit_code(failed)) == (FAILED.error, ExitCode.RUN_FAILED)


def combine(codes: list[ExitCode]) -> tuple[ExitCode, int]:
    """The combined code and how many runs ran before the sequence stopped."""
    combined = CombinedExitCode()
    for ran, code in enumerate(codes, start=1):
        if combined.add(code):
            return combined.code, ran
    return combined.code, len(codes)


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], (ExitCode.SUCCESS, 0)),
        ([ExitCode.SUCCESS, ExitCode.SUCCESS], (ExitCode.SUCCESS, 2)),
        ([ExitCode.SUCCESS, ExitCode.RUN_FAILED, ExitCode.SUCCESS], (ExitCode.RUN_FAILED, 3)),
        ([ExitCode.RUN_FAILED, ExitCode.SUCCESS, ExitCode.RUN_FAILED], (ExitCode.RUN_FAILED, 3)),
        ([ExitCode.RUN_FAILED, ExitCode.INTERRUPTED, ExitCode.SUCCESS], (ExitCode.INTERRUPTED, 2)),
        ([ExitCode.SUCCESS, ExitCode.TERMINATED, ExitCode.RUN_FAILED], (ExitCode.TERMINATED, 2)),
        ([ExitCode.USAGE, ExitCode.SUCCESS], (ExitCode.USAGE, 1)),
    ],
)
def test_a_sequence_keeps_the_first_failure_and_stops_at_a_signal_or_bad_input(
    codes: list[ExitCode], expected: tuple[ExitCode, int]
) -> None:
    assert combine(codes) == expected
