"""The real CLI in a subprocess against the real mock server over loopback."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.harness import (
    cli_process,
    mock_server,
    new_tag,
    processes_tagged,
    run_cli,
    service_pids,
    wait_for,
    wait_for_first_records,
)

pytestmark = pytest.mark.integration

PROFILE = ["profile", "-m", "mock-model"]


@pytest.mark.parametrize("endpoint_type", ["chat", "completions"])
@pytest.mark.parametrize("streaming", [True, False])
def test_request_count_is_exact_and_every_request_succeeds(tmp_path: Path, endpoint_type: str, streaming: bool) -> None:
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--endpoint-type", endpoint_type, "--concurrency", "4"]
        args += ["--request-count", "40", "--osl", "8", "--isl", "30"]
        run = run_cli([*args, "--streaming" if streaming else "--no-streaming"], tmp_path / "art")
        stats = server.stats()
    assert run.returncode == 0, run.stderr
    assert stats["requests_total"] == 40
    records = run.records()
    assert len(records) == 40
    assert len({r["credit_id"] for r in records}) == 40
    assert all(r["error_type"] is None and r["output_tokens"] == 8 for r in records)
    exported = run.export()
    assert exported["run"]["request_count"] == 40
    assert exported["run"]["success_count"] == 40
    assert ("time_to_first_token" in exported["metrics"]) is streaming
    assert (tmp_path / "art" / "profile_export.csv").is_file()
    assert len((tmp_path / "art" / "inputs.json").read_text()) > 0
    assert "Request Throughput" in run.stdout


def test_concurrency_is_never_exceeded(tmp_path: Path) -> None:
    with mock_server("--ttft-ms", "20") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--concurrency", "3", "--workers", "2"]
        run = run_cli([*args, "--request-count", "30", "--osl", "4"], tmp_path / "art")
        stats = server.stats()
    assert run.returncode == 0, run.stderr
    assert 1 <= stats["max_in_flight"] <= 3
    assert stats["requests_total"] == 30


def test_measured_ttft_and_itl_follow_the_server(tmp_path: Path) -> None:
    with mock_server("--ttft-ms", "50", "--itl-ms", "5") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--concurrency", "4", "--request-count", "20"]
        run = run_cli([*args, "--osl", "10"], tmp_path / "art")
    assert run.returncode == 0, run.stderr
    metrics = run.export()["metrics"]
    # A client can only see a token after the server sent it: lower bounds are exact, upper ones loose.
    assert metrics["time_to_first_token"]["min"] >= 50.0
    assert metrics["request_latency"]["min"] >= 50.0 + 9 * 5.0
    assert 4.0 <= metrics["inter_token_latency"]["p50"] <= 15.0


def test_warmup_requests_are_sent_but_left_out_of_results(tmp_path: Path) -> None:
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--concurrency", "2", "--request-count", "10"]
        run = run_cli([*args, "--warmup-request-count", "5", "--osl", "4"], tmp_path / "art")
        stats = server.stats()
    assert run.returncode == 0, run.stderr
    assert stats["requests_total"] == 15
    phases = [r["phase"] for r in run.records()]
    assert phases.count("warmup") == 5 and phases.count("profiling") == 10
    assert run.export()["run"]["request_count"] == 10


def test_server_errors_are_counted_and_the_run_completes(tmp_path: Path) -> None:
    with mock_server("--error-rate", "0.5", "--random-seed", "3") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--concurrency", "4", "--request-count", "40"]
        run = run_cli([*args, "--osl", "4"], tmp_path / "art")
        stats = server.stats()
    assert run.returncode == 0, run.stderr
    exported = run.export()
    assert 0 < stats["errors_injected"] < 40
    assert exported["run"]["error_count"] == stats["errors_injected"]
    assert exported["errors_by_type"]["http_error:500"]["count"] == stats["errors_injected"]
    assert "Traceback" not in run.stderr


def test_a_run_where_every_request_fails_exits_1_with_a_summary(tmp_path: Path) -> None:
    with mock_server("--error-rate", "1.0") as server:
        run = run_cli([*PROFILE, "-u", server.url, "--concurrency", "2", "--request-count", "10"], tmp_path / "art")
    assert run.returncode == 1
    assert "all 10 requests failed" in run.stderr
    assert run.export()["errors_by_type"]["http_error:500"]["count"] == 10
    assert "Traceback" not in run.stderr


def test_nothing_listening_fails_fast_with_one_clear_line(tmp_path: Path) -> None:
    with mock_server() as server:
        url = server.url  # a port that was just free; the server is stopped below
    run = run_cli([*PROFILE, "-u", url, "--request-count", "5"], tmp_path / "art", timeout_s=30)
    assert run.returncode == 1
    assert "cannot reach the server" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "--concurrency values must be positive"),
        (["--request-count", "5", "--benchmark-duration", "3"], "cannot be used together"),
        (["-u", "ftp://example"], "invalid --url"),
        (["--endpoint-type", "rerank"], "endpoint-type"),
        (["--header", "no-colon"], "--header expects"),
        (["--no-such-option"], "no-such-option"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    run = run_cli([*PROFILE, *args], tmp_path / "art", timeout_s=30)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_sigint_writes_partial_results_and_leaves_no_process(tmp_path: Path) -> None:
    tag = new_tag()
    artifact_dir = tmp_path / "art"
    with mock_server("--ttft-ms", "100") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--concurrency", "4", "--request-count", "100000"]
        with cli_process([*args, "--osl", "4"], artifact_dir, tag) as process:
            wait_for_first_records(artifact_dir)
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    exported = (artifact_dir / "profile_export.json").read_text()
    assert '"interrupted"' in exported
    assert "Traceback" not in stderr
    assert "aiperf-hpc results (interrupted)" in stdout
    wait_for(lambda: not processes_tagged(tag), 10, "every child process to end")


def test_a_killed_worker_is_accounted_for_and_the_run_completes(tmp_path: Path) -> None:
    tag = new_tag()
    artifact_dir = tmp_path / "art"
    with mock_server("--ttft-ms", "50") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--concurrency", "4", "--workers", "2"]
        with cli_process([*args, "--request-count", "200", "--osl", "2"], artifact_dir, tag) as process:
            wait_for_first_records(artifact_dir)
            workers = service_pids(tag, "worker-0")
            assert workers, "worker-0 not found"
            os.kill(workers[0], signal.SIGKILL)
            _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    lines = (artifact_dir / "records.jsonl").read_text().splitlines()
    assert len(lines) == 200  # one record per credit: successes plus the killed worker's lost ones
    assert "worker worker-0 lost" in stderr
    wait_for(lambda: not processes_tagged(tag), 10, "every child process to end")


def test_no_socket_directory_is_left_behind(tmp_path: Path) -> None:
    private_tmp = tmp_path / "tmp"  # the run's own TMPDIR: other runs on the machine cannot interfere
    private_tmp.mkdir()
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--request-count", "3"]
        run = run_cli(args, tmp_path / "art", extra_env={"TMPDIR": str(private_tmp)})
    assert run.returncode == 0, run.stderr
    assert list(private_tmp.iterdir()) == []


def test_the_failure_threshold_stops_a_failing_run_early_with_partial_results(tmp_path: Path) -> None:
    with mock_server("--error-rate", "1.0", "--ttft-ms", "5") as server:
        args = [*PROFILE, "-u", server.url, "--concurrency", "2", "--request-count", "100000"]
        run = run_cli([*args, "--failure-threshold", "50"], tmp_path / "art", timeout_s=60)
    assert run.returncode == 1
    assert "more than --failure-threshold 50%" in run.stderr
    exported = run.export()
    assert exported["metadata"]["status"] == "failed"
    assert 10 <= exported["run"]["request_count"] < 100000
    assert exported["run"]["request_count"] == len(run.records())  # every record that arrived is in the results
