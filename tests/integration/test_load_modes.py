"""Every load mode of the timing manager, end to end against the real mock server."""

from __future__ import annotations

import itertools
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import MockServer, mock_server, run_cli

pytestmark = pytest.mark.integration

PROFILE = ["profile", "-m", "mock-model"]


def requests_seen(server: MockServer) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{server.url}/mock/requests", timeout=5) as response:
        data: Any = json.loads(response.read())
    return data["requests"] if isinstance(data, dict) else data


def by_credit(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r["credit_id"])


def test_a_constant_rate_schedules_every_request_on_an_absolute_grid(tmp_path: Path) -> None:
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--request-rate", "200", "--request-rate-mode", "constant"]
        run = run_cli([*args, "--request-count", "60", "--osl", "2", "--isl", "20"], tmp_path / "art")
        stats = server.stats()
    assert run.returncode == 0, run.stderr
    assert stats["requests_total"] == 60
    records = by_credit(run.records())
    scheduled = [r["scheduled_wall_ns"] for r in records]
    assert [b - a for a, b in itertools.pairwise(scheduled)] == [5_000_000] * 59
    assert all(r["started_wall_ns"] >= r["scheduled_wall_ns"] for r in records)  # never sent early
    exported = run.export()
    assert exported["metrics"]["send_lag"]["count"] == 60
    assert "request_latency_from_intended" in exported["metrics"]


def test_the_schedule_and_contents_do_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    def plan(workers: str) -> list[tuple[int, int]]:
        args = [*PROFILE, "-u", server.url, "--request-rate", "400", "--request-rate-mode", "gamma"]
        args += ["--burstiness", "0.5", "--random-seed", "42", "--request-count", "80", "--osl", "2"]
        run = run_cli([*args, "--isl", "20", "--num-dataset-entries", "7", "--workers", workers], tmp_path / workers)
        assert run.returncode == 0, run.stderr
        records = by_credit(run.records())
        start = records[0]["scheduled_wall_ns"]
        return [(r["scheduled_wall_ns"] - start, r["conversation_index"]) for r in records]

    with mock_server() as server:
        one, two = plan("1"), plan("2")
    assert one == two
    assert len({gap for gap, _ in one}) > 60  # really random arrivals, not a grid


def test_a_rate_the_client_cannot_keep_shows_as_send_lag(tmp_path: Path) -> None:
    with mock_server("--ttft-ms", "20") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--request-rate", "1000", "--concurrency", "2"]
        run = run_cli([*args, "--request-rate-mode", "constant", "--request-count", "40", "--osl", "1"], tmp_path / "a")
        stats = server.stats()
    assert run.returncode == 0, run.stderr
    assert stats["max_in_flight"] <= 2
    # 40 requests of >= 20 ms through 2 slots take >= 400 ms, but were all due within 39 ms.
    assert run.export()["metrics"]["send_lag"]["max"] >= 400 - 39
    assert run.export()["metadata"]["validity"]["valid"] is False  # said plainly, not silent
    assert "warning: requests left late" in run.stderr


def test_a_rate_with_a_duration_sends_only_what_is_due_before_its_end(tmp_path: Path) -> None:
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--request-rate", "50", "--request-rate-mode", "constant"]
        run = run_cli([*args, "--benchmark-duration", "1", "--osl", "1", "--isl", "10"], tmp_path / "art")
        stats = server.stats()
    assert run.returncode == 0, run.stderr
    assert stats["requests_total"] == 50


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_trace_is_replayed_in_order_on_its_timeline(tmp_path: Path) -> None:
    rows = [
        {"text": f"request {i} says hello", "timestamp": t, "output_length": 2} for i, t in enumerate([0, 40, 80, 200])
    ]
    trace = write_jsonl(tmp_path / "trace.jsonl", rows)
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--input-file", str(trace), "--custom-dataset-type", "single_turn"]
        run = run_cli([*args, "--fixed-schedule", "--fixed-schedule-speedup", "2"], tmp_path / "art")
        seen = requests_seen(server)
    assert run.returncode == 0, run.stderr
    assert [r["last_user_text_prefix"].split()[1] for r in seen] == ["0", "1", "2", "3"]
    scheduled = [r["scheduled_wall_ns"] for r in by_credit(run.records())]
    assert [b - a for a, b in itertools.pairwise(scheduled)] == [20_000_000, 20_000_000, 60_000_000]


def test_conversation_turns_arrive_in_order_with_their_history(tmp_path: Path) -> None:
    conversations = [
        {"session_id": f"s{c}", "turns": [{"text": f"conv{c} turn{t}", "output_length": 3} for t in range(3)]}
        for c in range(2)
    ]
    data = write_jsonl(tmp_path / "chats.jsonl", conversations)
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--input-file", str(data), "--custom-dataset-type", "multi_turn"]
        run = run_cli([*args, "--concurrency", "2", "--streaming"], tmp_path / "art")  # one pass: 6 requests
        seen = requests_seen(server)
    assert run.returncode == 0, run.stderr
    for conversation in ("conv0", "conv1"):
        turns = [r for r in seen if r["last_user_text_prefix"].startswith(conversation)]
        assert [r["last_user_text_prefix"] for r in turns] == [f"{conversation} turn{t}" for t in range(3)]
        assert [r["messages_count"] for r in turns] == [1, 3, 5]  # each turn carries the earlier answers
    workers = {(r["conversation_index"], r["worker_id"]) for r in run.records()}
    assert len(workers) == 2  # every turn of a conversation went to one worker


def test_cancelled_requests_are_counted_apart_from_errors(tmp_path: Path) -> None:
    with mock_server("--ttft-ms", "300") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--concurrency", "4", "--request-count", "16"]
        args += ["--request-cancellation-rate", "50", "--request-cancellation-delay", "0.05", "--osl", "2"]
        run = run_cli(args, tmp_path / "art")
    assert run.returncode == 0, run.stderr
    records = run.records()
    cancelled = [r for r in records if r["error_type"] == "cancelled"]
    assert 0 < len(cancelled) < 16
    exported = run.export()["run"]
    assert exported["cancelled_count"] == len(cancelled)
    assert exported["error_count"] == 0
    assert exported["success_count"] == 16 - len(cancelled)


def test_a_concurrency_sweep_runs_each_value_and_summarises(tmp_path: Path) -> None:
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--concurrency", "1,3", "--request-count", "9", "--osl", "1"]
        run = run_cli(args, tmp_path / "sweep")
        stats = server.stats()
    assert run.returncode == 0, run.stderr
    assert stats["requests_total"] == 18
    for value in ("concurrency1", "concurrency3"):
        assert json.loads((tmp_path / "sweep" / value / "profile_export.json").read_text())["run"]["request_count"] == 9
    summary = json.loads((tmp_path / "sweep" / "sweep_summary.json").read_text())
    assert len(summary["rows"] if isinstance(summary, dict) else summary) == 2
    assert "sweep summary" in run.stdout


def test_embeddings(tmp_path: Path) -> None:
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--endpoint-type", "embeddings", "--request-count", "5", "--isl", "16"]
        run = run_cli(args, tmp_path / "art")
    assert run.returncode == 0, run.stderr
    assert all(r["error_type"] is None and r["input_tokens"] for r in run.records())


def test_without_usage_output_tokens_are_counted_from_the_stream(tmp_path: Path) -> None:
    with mock_server("--no-usage") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--request-count", "4", "--osl", "5"]
        run = run_cli(args, tmp_path / "art")
    assert run.returncode == 0, run.stderr
    assert {(r["output_tokens"], r["output_tokens_source"]) for r in run.records()} == {(5, "chunks")}


def test_without_usage_a_whole_body_is_counted_with_a_tokenizer(tmp_path: Path) -> None:
    with mock_server("--no-usage") as server:
        run = run_cli([*PROFILE, "-u", server.url, "--request-count", "3", "--osl", "6"], tmp_path / "art")
    assert run.returncode == 0, run.stderr
    records = run.records()
    assert {r["output_tokens_source"] for r in records} == {"tokenizer"}
    assert all(r["output_tokens"] >= 6 for r in records)  # six words are at least six tokens


def test_goodput_counts_requests_meeting_every_slo(tmp_path: Path) -> None:
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--request-count", "6", "--osl", "3"]
        run = run_cli([*args, "--goodput", "request_latency:60000 time_to_first_token:60000"], tmp_path / "art")
    assert run.returncode == 0, run.stderr
    figures = run.export()["run"]
    assert figures["good_request_fraction"] == 1.0
    assert figures["goodput"] == pytest.approx(figures["request_throughput"])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (['{"text": "ok"}', "{not json"], "data.jsonl:2"),
        (['{"text": "ok"}', '{"output_length": 3}'], "data.jsonl:2"),
    ],
)
def test_a_bad_input_file_exits_2_naming_the_line(tmp_path: Path, rows: list[str], message: str) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(rows) + "\n")
    with mock_server() as server:
        args = [*PROFILE, "-u", server.url, "--input-file", str(data), "--custom-dataset-type", "single_turn"]
        run = run_cli(args, tmp_path / "art", timeout_s=60)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert "results" not in run.stdout  # no empty results table for a run that never started
    assert run.stderr.strip().splitlines()[-1].startswith("aiperf-hpc: error:")
