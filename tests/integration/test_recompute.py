"""The records service killed mid-run: the run fails naming it, records.jsonl stays intact up to the
kill, no process is left, and `aiperf-hpc recompute` rebuilds the exports from the records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from aiperf_hpc.artifacts import SPOOL_FILE
from tests.integration.harness import (
    CLI,
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

PROFILE = ["profile", "-m", "mock-model"]


def records_service(tag: str) -> int:
    """The PID of the run's records service (named after its id, forked or not)."""
    found = service_pids(tag, "records")
    assert len(found) == 1, f"records service not found among {[cmdline(pid) for pid in processes_tagged(tag)]}"
    return found[0]


def intact_lines(path: Path) -> int:
    """Records that parse; only the last line may be torn."""
    lines = path.read_bytes().split(b"\n")
    parsed = 0
    for index, line in enumerate(lines):
        if not line:
            continue
        try:
            json.loads(line)
        except ValueError:
            assert index == len(lines) - 1, f"line {index + 1} of {len(lines)} does not parse: {line[:80]!r}"
            continue
        parsed += 1
    return parsed


def test_a_killed_records_service_fails_the_run_and_recompute_rebuilds_the_results(tmp_path: Path) -> None:
    tag = new_tag()
    artifact_dir = tmp_path / "art"
    records = artifact_dir / "records.jsonl"
    with mock_server("--ttft-ms", "20") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--concurrency", "4", "--request-count", "100000"]
        with cli_process([*args, "--goodput", "time_to_first_token:1000"], artifact_dir, tag) as process:
            wait_for_first_records(artifact_dir)
            os.kill(records_service(tag), signal.SIGKILL)
            _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    assert "service records exited with code -9" in stderr
    assert f"aiperf-hpc recompute {artifact_dir}" in stderr
    assert "Traceback" not in stderr
    assert not (artifact_dir / "profile_export.json").exists()
    wait_for(lambda: not processes_tagged(tag), 10, "every child process to end")
    count = intact_lines(records)
    assert count > 0

    done = subprocess.run([*CLI, "recompute", str(artifact_dir)], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert "aiperf-hpc results (recomputed)" in done.stdout
    exported = json.loads((artifact_dir / "profile_export.json").read_text())
    assert exported["run"]["request_count"] == count
    assert exported["run"]["goodput_slos"] == {"time_to_first_token": 1000.0}  # from run_config.json
    assert exported["metadata"]["recomputed"] is True
    assert (artifact_dir / "profile_export.csv").is_file()
    assert not (artifact_dir / SPOOL_FILE).exists()  # the dead service's partial spool is removed


def test_the_results_of_a_run_equal_those_recomputed_from_records_jsonl(tmp_path: Path) -> None:
    """The records service computes its results from the columns it spooled while records arrived;
    `recompute` decodes records.jsonl. Both must give the same figures, warmup and errors included."""
    artifact_dir = tmp_path / "art"
    with mock_server("--error-rate", "0.3", "--random-seed", "5", "--ttft-ms", "2") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--concurrency", "8", "--request-count", "300"]
        run = run_cli([*args, "--warmup-request-count", "20"], artifact_dir)
    assert run.returncode == 0, run.stderr
    assert not (artifact_dir / SPOOL_FILE).exists()
    assert "spool" not in (artifact_dir / "logs" / "records.log").read_text()  # it was read, not bypassed
    before = json.loads((artifact_dir / "profile_export.json").read_text())
    assert before["run"]["error_count"] > 0

    done = subprocess.run([*CLI, "recompute", str(artifact_dir)], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    after = json.loads((artifact_dir / "profile_export.json").read_text())
    assert {key: after[key] for key in ("run", "metrics", "by_node")} == {
        key: before[key] for key in ("run", "metrics", "by_node")
    }


def test_recompute_of_a_directory_without_records_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "recompute", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == f"aiperf-hpc: error: no records.jsonl in {tmp_path}: not a run's artifact directory"
