"""The live view (`--ui`) and the live /metrics (`--metrics-port`) of real runs against the mock server."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import CLI, mock_server, new_tag, processes_tagged, run_cli, tagged_env, wait_for

pytestmark = pytest.mark.integration

PROFILE = ["profile", "-m", "mock-model", "--streaming", "--osl", "4"]
PROGRESS_LINE = re.compile(r"^aiperf-hpc: (done: )?[\d,]+/[\d,]+ requests \(\d+%\)", re.MULTILINE)
METRICS_URL = re.compile(r"^aiperf-hpc: live metrics at (http://127\.0\.0\.1:\d+/metrics)$", re.MULTILINE)


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Family samples by sample name, or {} while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_metrics_are_served_while_the_run_runs_and_sigint_ends_it(tmp_path: Path) -> None:
    tag = new_tag()
    stderr_path = tmp_path / "stderr.txt"
    with mock_server("--ttft-ms", "20") as server, stderr_path.open("w") as stderr:
        args = [*PROFILE, "-u", server.url, "--concurrency", "4", "--request-count", "100000"]
        args += ["--ui", "simple", "--metrics-port", "0", "--artifact-dir", str(tmp_path / "art")]
        process = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=stderr, env=tagged_env(tag))
        try:
            wait_for(lambda: METRICS_URL.search(stderr_path.read_text()) is not None, 60, "the metrics URL")
            match = METRICS_URL.search(stderr_path.read_text())
            assert match is not None
            url = match.group(1)
            latest: dict[str, list[tuple[dict[str, str], float]]] = {}

            def requests_counted() -> bool:
                latest.update(scrape(url))
                return sum(value for _, value in latest.get("aiperf_requests_total", [])) > 0

            wait_for(requests_counted, 60, "aiperf_requests_total > 0")
            # A progress line of the simple view, and only then the signal.
            wait_for(lambda: PROGRESS_LINE.search(stderr_path.read_text()) is not None, 60, "a progress line")
            process.send_signal(signal.SIGINT)
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    assert process.returncode == 130, stderr_path.read_text()
    wait_for(lambda: not processes_tagged(tag), 10, "every child process to end")
    assert scrape(url) == {}  # the server ended with the run

    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()  # the records' node
    requests = {labels["node"]: value for labels, value in latest["aiperf_requests_total"]}
    assert set(requests) == {node}
    assert latest["aiperf_output_tokens_total"] == [({"node": node}, 4 * requests[node])]
    assert latest["aiperf_input_tokens_total"][0][1] > 0
    assert latest["aiperf_workers_alive"][0][1] >= 1
    assert latest["aiperf_requests_in_flight"][0][1] >= 0
    for family in ("time_to_first_token", "inter_token_latency", "request_latency"):
        name = f"aiperf_{family}_seconds"
        buckets = [(float(labels["le"]), value) for labels, value in latest[f"{name}_bucket"]]
        counts = [value for _, value in sorted(buckets)]
        assert counts == sorted(counts), name  # cumulative
        assert counts[-1] == latest[f"{name}_count"][0][1] == requests[node], name  # no errors here
        assert latest[f"{name}_sum"][0][1] > 0
    ttft = {float(labels["le"]): value for labels, value in latest["aiperf_time_to_first_token_seconds_bucket"]}
    assert ttft[0.01] == 0  # the mock waits 20 ms before the first token


def test_simple_ends_with_a_line_whose_totals_are_the_records(tmp_path: Path) -> None:
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--concurrency", "4", "--request-count", "40", "--ui", "simple"]
        run = run_cli(args, tmp_path / "art")
    assert run.returncode == 0, run.stderr
    last = [line for line in run.stderr.splitlines() if "done:" in line]
    assert len(last) == 1
    assert last[0].startswith("aiperf-hpc: done: 40/40 requests (100%), 0 errors, ")
    assert len(run.records()) == run.export()["run"]["request_count"] == 40


def test_none_prints_no_progress(tmp_path: Path) -> None:
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--concurrency", "4", "--request-count", "40", "--ui", "none"]
        run = run_cli(args, tmp_path / "art")
    assert run.returncode == 0, run.stderr
    assert " requests" not in run.stderr and "req/s" not in run.stderr
    assert "Request Throughput" in run.stdout


def test_the_live_view_runs_to_the_end_on_a_terminal(tmp_path: Path) -> None:
    with mock_server("--ttft-ms", "10") as server:
        args = [*PROFILE, "-u", server.url, "--concurrency", "4", "--request-count", "200"]
        output, returncode = run_in_terminal([*CLI, *args, "--artifact-dir", str(tmp_path / "art")], timeout_s=90)
    assert returncode == 0, output
    assert "ETA" in output and "200/200 requests" in output  # --ui auto is live on a terminal
    assert "Request Throughput" in output
    assert "Traceback" not in output


def test_a_port_in_use_is_a_one_line_usage_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_cli([*PROFILE, "--metrics-port", str(port)], tmp_path / "art", timeout_s=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines()[-1].startswith(f"aiperf-hpc: error: --metrics-port {port}: cannot listen on ")
    assert "Traceback" not in run.stderr


def run_in_terminal(command: list[str], timeout_s: float) -> tuple[str, int]:
    """Run `command` with a pseudo-terminal as stdin, stdout and stderr; its output and exit code."""
    controller_fd, terminal_fd = pty.openpty()
    process = subprocess.Popen(
        command, stdin=terminal_fd, stdout=terminal_fd, stderr=terminal_fd, env=tagged_env(new_tag()), close_fds=True
    )
    os.close(terminal_fd)
    chunks = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller_fd], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller_fd, 65536)
            except OSError:  # EIO: every writer closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(max(1.0, deadline - time.monotonic()))
    finally:
        os.close(controller_fd)
        if process.poll() is None:
            process.kill()
            process.wait(5)
    return b"".join(chunks).decode(errors="replace"), process.returncode
