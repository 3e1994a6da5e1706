"""The real CLI against a real mock server that misbehaves on purpose (mock_server/faults.py): every
fault becomes a record with a named error type, the run completes with one record per request, and
the counts in profile_export.json equal what the server says it injected."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.harness import (
    CliRun,
    cli_process,
    cmdline,
    mock_server,
    new_tag,
    processes_tagged,
    run_cli,
    service_pids,
    wait_for,
    wait_for_first_records,
)

pytestmark = pytest.mark.integration

PROFILE = ["profile", "-m", "mock-model", "--concurrency", "4", "--osl", "6"]
REQUESTS = 30
TIMEOUT = ["--request-timeout-seconds", "1"]  # what ends a stalled request

# fault kind -> (error type of its records, start of their message)
EXPECTED = {
    "disconnect": ("connection_error", "Response payload is not completed"),
    "truncate": ("connection_error", "Response payload is not completed"),
    "malformed": ("invalid_response", "invalid JSON in SSE event"),
    "no-done": ("invalid_response", "stream ended without [DONE]"),
    "stall": ("timeout", "no complete response within 1 s"),
    "non-json": ("invalid_response", "the streamed response holds no SSE event"),
}


def assert_one_record_per_request(run: CliRun, requests: int) -> None:
    records = run.records()
    assert len(records) == requests
    assert sorted(record["credit_id"] for record in records) == list(range(requests))
    assert run.export()["run"]["request_count"] == requests


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_fault_becomes_a_named_error_counted_exactly(tmp_path: Path, kind: str) -> None:
    with mock_server("--fault", f"{kind}=0.3", "--random-seed", "1") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--request-count", str(REQUESTS), *TIMEOUT]
        run = run_cli(args, tmp_path / "art")
        truth = server.stats()
    assert run.returncode == 0, run.stderr  # some requests succeeded
    assert "Traceback" not in run.stderr
    injected = truth["faults_injected"][kind]
    assert 0 < injected < REQUESTS
    assert sum(truth["faults_injected"].values()) == injected
    assert truth["requests_total"] == REQUESTS  # nothing was retried
    assert_one_record_per_request(run, REQUESTS)
    error_type, message = EXPECTED[kind]
    exported = run.export()
    assert list(exported["errors_by_type"]) == [error_type]
    assert exported["errors_by_type"][error_type]["count"] == injected
    assert exported["errors_by_type"][error_type]["sample_message"].startswith(message)
    assert exported["run"]["error_count"] == injected
    assert exported["run"]["success_count"] == REQUESTS - injected


def test_every_fault_at_once_without_streaming_is_counted_by_type(tmp_path: Path) -> None:
    faults = ["--fault", "disconnect=0.15", "--fault", "truncate=0.15", "--fault", "stall=0.15"]
    faults += ["--fault", "non-json=0.15", "--fault", "malformed=0.15", "--fault", "no-done=0.15"]
    with mock_server(*faults, "--random-seed", "2") as server:
        args = [*PROFILE, "-u", server.url, "--no-streaming", "--request-count", "40", *TIMEOUT]
        run = run_cli(args, tmp_path / "art")
        truth = server.stats()["faults_injected"]
    assert run.returncode == 0, run.stderr
    assert_one_record_per_request(run, 40)
    counts = {key: summary["count"] for key, summary in run.export()["errors_by_type"].items()}
    assert truth["malformed"] == truth["no-done"] == 0  # streams only: these requests got normal answers
    expected = {
        "connection_error": truth["disconnect"] + truth["truncate"],
        "timeout": truth["stall"],
        "invalid_response": truth["non-json"],
    }
    assert counts == {key: count for key, count in expected.items() if count}
    assert all(expected.values())


def test_a_run_where_every_stream_breaks_exits_1_naming_the_error(tmp_path: Path) -> None:
    with mock_server("--fault", "disconnect=1") as server:
        run = run_cli([*PROFILE, "-u", server.url, "--streaming", "--request-count", "10"], tmp_path / "art")
    assert run.returncode == 1
    assert "all 10 requests failed; 10 with connection_error: Response payload is not completed" in run.stderr
    assert_one_record_per_request(run, 10)


def test_error_statuses_are_counted_by_status(tmp_path: Path) -> None:
    with mock_server("--error-rate", "0.5", "--error-status", "429,503", "--random-seed", "4") as server:
        run = run_cli([*PROFILE, "-u", server.url, "--streaming", "--request-count", "40"], tmp_path / "art")
        truth = server.stats()
    assert run.returncode == 0, run.stderr
    assert_one_record_per_request(run, 40)
    by_status = truth["errors_by_status"]
    assert set(by_status) == {"429", "503"}
    counts = {key: summary["count"] for key, summary in run.export()["errors_by_type"].items()}
    assert counts == {"http_error:429": by_status["429"], "http_error:503": by_status["503"]}


def test_a_server_that_dies_mid_run_ends_the_run_with_every_request_recorded(tmp_path: Path) -> None:
    tag = new_tag()
    artifact_dir = tmp_path / "art"
    with mock_server("--ttft-ms", "10") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--request-count", "100000"]
        with cli_process(args, artifact_dir, tag) as process:

            def some_completed() -> bool:
                truth = server.stats()
                return bool(truth["requests_total"] - truth["requests_in_flight"] >= 20)

            wait_for(some_completed, 60, "20 completed requests")
            server.process.kill()
            server.process.wait(10)
            stdout, stderr = process.communicate(timeout=90)
    run = CliRun(process.returncode, stdout, stderr, artifact_dir)
    assert run.returncode == 1, stderr
    assert "error: the server stopped answering during the run: cannot reach the server at" in stderr
    assert "Traceback" not in stderr
    exported = run.export()
    assert exported["metadata"]["status"] == "failed"
    sent = exported["run"]["request_count"]
    assert sent >= 20
    assert_one_record_per_request(run, sent)
    assert exported["run"]["success_count"] > 0
    assert list(exported["errors_by_type"]) == ["connection_error"]
    assert exported["errors_by_type"]["connection_error"]["count"] == exported["run"]["error_count"] > 0
    wait_for(lambda: not processes_tagged(tag), 10, "every child process to end")


@pytest.mark.parametrize("service", ["dataset", "timing", "worker_manager"])
def test_a_manager_process_killed_mid_run_fails_the_run_naming_it(tmp_path: Path, service: str) -> None:
    tag = new_tag()
    artifact_dir = tmp_path / "art"
    with mock_server("--ttft-ms", "20") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--request-count", "100000"]
        with cli_process(args, artifact_dir, tag) as process:
            wait_for_first_records(artifact_dir)
            victims = service_pids(tag, service)
            assert len(victims) == 1, [cmdline(pid) for pid in processes_tagged(tag)]
            os.kill(victims[0], signal.SIGKILL)
            _, stderr = process.communicate(timeout=90)
    assert process.returncode == 1, stderr
    assert f"aiperf-hpc: error: service {service} exited with code -9" in stderr
    assert "Traceback" not in stderr
    run = CliRun(process.returncode, "", stderr, artifact_dir)
    exported = run.export()
    assert exported["metadata"]["status"] == "failed"
    # Whatever died, the requests in flight were ended and recorded before the results: every record
    # in records.jsonl is in the export (without timing, the controller cancels them at the workers).
    assert len(run.records()) == exported["run"]["request_count"] > 0
    wait_for(lambda: not processes_tagged(tag), 10, "every child process to end")
