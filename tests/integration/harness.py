"""Process harness for integration tests: run the real CLI and the real mock server as subprocesses.

Every process started here is killed on timeout or teardown; every wait polls with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "aiperf_hpc.cli"]
RUN_TAG_ENV = "AIPERF_HPC_TEST_TAG"


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll `condition` until true; fail the test naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)  # ok: polling interval of a bounded wait, not synchronisation


@dataclass
class MockServer:
    url: str
    process: subprocess.Popen[str]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/mock/stats", timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data


@contextmanager
def mock_server(*args: str) -> Iterator[MockServer]:
    process = subprocess.Popen(
        [*CLI, "mock-server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the server prints its address first; EOF if it died
        if "listening on" not in line:
            error_output = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"mock server did not start: {line!r} {error_output}")
        yield MockServer(line.rsplit(" ", 1)[-1].strip(), process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    artifact_dir: Path

    def export(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.artifact_dir / "profile_export.json").read_text())
        return data

    def records(self) -> list[dict[str, Any]]:
        lines = (self.artifact_dir / "records.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]


def new_tag() -> str:
    return uuid.uuid4().hex


def tagged_env(tag: str) -> dict[str, str]:
    return {**os.environ, RUN_TAG_ENV: tag}


def run_cli(
    args: list[str],
    artifact_dir: Path,
    timeout_s: float = 90.0,
    tag: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> CliRun:
    """Run `aiperf-hpc profile ...` to completion; kill it and fail if it outlives `timeout_s`."""
    env = tagged_env(tag or new_tag()) | (extra_env or {})
    try:
        done = subprocess.run(
            [*CLI, *args, "--artifact-dir", str(artifact_dir)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"CLI did not finish within {timeout_s} s: {exc.stderr!r}") from exc
    return CliRun(done.returncode, done.stdout, done.stderr, artifact_dir)


@contextmanager
def cli_process(
    args: list[str], artifact_dir: Path, tag: str, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`aiperf-hpc ARGS --artifact-dir DIR` running in the background, stdout and stderr piped, for
    tests that act on a run while it runs; killed on leaving the block if it is still running."""
    process = subprocess.Popen(
        [*CLI, *args, "--artifact-dir", str(artifact_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=tagged_env(tag) | (extra_env or {}),
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def wait_for_first_records(artifact_dir: Path, timeout_s: float = 60) -> None:
    """Wait until the run's records.jsonl holds something: the run is past start-up and profiling."""
    records = artifact_dir / "records.jsonl"
    wait_for(lambda: records.exists() and records.stat().st_size > 0, timeout_s, "the first records")


def processes_tagged(tag: str) -> list[int]:
    """PIDs of live processes whose environment carries the test's tag (children of a run)."""
    needle = f"{RUN_TAG_ENV}={tag}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if needle in environ.split(b"\0") and "\nState:\tZ" not in status:
            pids.append(int(entry.name))
    return pids


def service_pids(tag: str, service_id: str) -> list[int]:
    """PIDs of the test's live processes running `service_id` (services name their process after
    their id in /proc/PID/comm, whether forked or started as a subprocess)."""
    pids = []
    for pid in processes_tagged(tag):
        try:
            if (Path("/proc") / str(pid) / "comm").read_text().strip() == service_id[:15]:
                pids.append(pid)
        except OSError:
            continue
    return pids


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
