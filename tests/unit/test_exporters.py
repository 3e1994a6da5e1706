"""The exporters write what RunMetrics holds, and records.jsonl reads back what was written."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from aiperf_hpc.config import EndpointConfig
from aiperf_hpc.core.metrics import RunMetrics, compute_metrics, metrics_of_columns
from aiperf_hpc.protocol.messages import RequestRecord
from aiperf_hpc.results import records_jsonl
from aiperf_hpc.results.csv_export import METRICS_HEADER, NODES_HEADER, write_profile_export_csv
from aiperf_hpc.results.json_export import write_profile_export_json
from aiperf_hpc.results.records_jsonl import read_record_columns, read_records_jsonl
from aiperf_hpc.results.tables import render_results

MS = 1_000_000
BASE_WALL_NS = 1_700_000_000_000_000_000


def record(credit_id: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "credit_id": credit_id,
        "phase": "profiling",
        "worker_id": "w0",
        "node": "n0",
        "conversation_index": 0,
        "started_wall_ns": BASE_WALL_NS,
    }
    return RequestRecord(**(base | fields)).model_dump(mode="json")


@pytest.fixture
def metrics() -> RunMetrics:
    """Two streaming successes (TTFT 10 and 30 ms), one HTTP 500, one cancelled; duration 0.5 s."""
    return compute_metrics(
        [
            record(1, latency_ns=40 * MS, response_times_ns=[10 * MS, 20 * MS], input_tokens=50, output_tokens=3),
            record(2, latency_ns=60 * MS, response_times_ns=[30 * MS, 35 * MS], input_tokens=50, output_tokens=3),
            record(3, latency_ns=500 * MS, status_code=500, error_type="http_error", error_message="boom"),
            record(4, error_type="cancelled"),
        ]
    )


def test_json_export_holds_metadata_run_figures_metrics_and_errors(tmp_path: Path, metrics: RunMetrics) -> None:
    path = tmp_path / "profile_export.json"
    endpoint = EndpointConfig(model="m")
    write_profile_export_json(path, metrics, {"status": "completed", "endpoint": endpoint, "dir": tmp_path})

    document = orjson.loads(path.read_bytes())
    assert set(document) == {"metadata", "run", "metrics", "errors_by_type", "by_node"}
    assert document["metadata"]["status"] == "completed"
    assert document["metadata"]["endpoint"]["model"] == "m"
    assert document["metadata"]["dir"] == str(tmp_path)
    assert document["run"]["request_count"] == 4
    assert document["run"]["success_count"] == 2
    assert document["run"]["cancelled_count"] == 1
    assert document["run"]["benchmark_duration_s"] == pytest.approx(0.5)
    ttft = document["metrics"]["time_to_first_token"]
    assert ttft["unit"] == "ms"
    assert (ttft["avg"], ttft["min"], ttft["max"], ttft["count"]) == (20.0, 10.0, 30.0, 2)
    assert {"p1", "p50", "p99", "std"} <= set(ttft)
    assert document["errors_by_type"] == {"http_error:500": {"count": 1, "sample_message": "boom"}}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    # Closed loop, no --goodput: the new figures are there, as null.
    for name in ("scheduled_request_rate", "goodput", "good_request_fraction", "goodput_slos"):
        assert document["run"][name] is None
    assert document["run"]["output_tokens_source"] == {}
    assert "send_lag" not in document["metrics"]


def test_csv_export_has_the_metrics_table_then_the_run_figures(tmp_path: Path, metrics: RunMetrics) -> None:
    path = tmp_path / "profile_export.csv"
    write_profile_export_csv(path, metrics)

    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[0] == list(METRICS_HEADER)
    assert rows[0][:4] == ["Metric", "Unit", "avg", "min"]
    assert rows[0][-1] == "count"
    by_name = {row[0]: row for row in rows[1:] if row}
    ttft = dict(zip(rows[0], by_name["time_to_first_token"], strict=True))
    assert (ttft["Unit"], float(ttft["avg"]), float(ttft["max"]), ttft["count"]) == ("ms", 20.0, 30.0, "2")

    first_blank = rows.index([])
    assert rows[first_blank + 1] == ["Metric", "Value"]
    assert by_name["request_count"] == ["request_count", "4"]
    assert float(by_name["benchmark_duration_s"][1]) == pytest.approx(0.5)
    assert ["Error Type", "Count", "Sample Message"] in rows
    assert by_name["http_error:500"] == ["http_error:500", "1", "boom"]


def test_csv_export_leaves_uncomputable_figures_empty(tmp_path: Path) -> None:
    path = tmp_path / "profile_export.csv"
    write_profile_export_csv(path, compute_metrics([]))
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[:3] == [list(METRICS_HEADER), [], ["Metric", "Value"]]
    assert ["request_throughput", ""] in rows
    assert ["Error Type", "Count", "Sample Message"] not in rows


def test_console_renders_metrics_run_figures_and_errors(metrics: RunMetrics) -> None:
    console = Console(record=True, width=160)
    render_results(metrics, title="NVIDIA AIPerf-HPC | LLM Metrics", console=console)
    text = console.export_text()
    assert "NVIDIA AIPerf-HPC | LLM Metrics" in text
    ttft_line = next(line for line in text.splitlines() if "Time to First Token (ms)" in line)
    assert ttft_line.split()[-7:] == ["20.00", "10.00", "30.00", "29.80", "28.00", "20.00", "10.00"]
    for label in ("Request Throughput (req/s)", "Output Token Throughput (tokens/s)", "Benchmark Duration (s)"):
        assert label in text
    assert "Errors by type" in text
    assert "http_error:500" in text
    assert "boom" in text
    request_count_line = next(line for line in text.splitlines() if "Request Count" in line)
    assert request_count_line.split()[-1] == "4"
    assert "\x1b[" not in text


def test_console_is_not_squeezed_when_not_a_terminal(metrics: RunMetrics) -> None:
    console = Console(record=True, width=80, force_terminal=False)
    render_results(metrics, title="Results", console=console)
    line = next(line for line in console.export_text().splitlines() if "Output Token Throughput Per User" in line)
    assert "(tokens/s/user)" in line


def test_console_without_errors_has_no_errors_table() -> None:
    metrics = compute_metrics([record(1, latency_ns=10 * MS)])
    console = Console(record=True, width=160)
    render_results(metrics, title="Results", console=console)
    text = console.export_text()
    assert "Request Latency (ms)" in text
    assert "Errors by type" not in text


def _write_lines(path: Path, records: list[dict[str, Any]], tail: bytes = b"") -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + tail)


def test_records_reader_skips_and_counts_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    written = [record(i, latency_ns=MS) for i in range(3)]
    torn = orjson.dumps(record(3, latency_ns=MS))[:25]
    _write_lines(path, written, tail=torn)

    read = read_records_jsonl(path)
    assert read.records == written
    assert read.skipped_lines == 1
    assert read.first_skipped_line == 4


def test_records_reader_ignores_blank_lines_and_counts_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    good = record(1, latency_ns=MS)
    path.write_bytes(b"\n" + orjson.dumps(good) + b"\n[1, 2]\n{not json\n\n" + orjson.dumps(good) + b"\n")

    read = read_records_jsonl(path)
    assert read.records == [good, good]
    assert read.skipped_lines == 2
    assert read.first_skipped_line == 3


def test_records_read_back_give_the_same_metrics(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    written = [record(i, latency_ns=(i + 1) * MS, response_times_ns=[MS // 2, MS], output_tokens=2) for i in range(5)]
    _write_lines(path, written)
    read = read_records_jsonl(path)
    assert read.skipped_lines == 0
    assert read.first_skipped_line is None
    assert compute_metrics(read.records) == compute_metrics(written)


@pytest.fixture
def scheduled_metrics() -> RunMetrics:
    """Rate mode with --goodput: two streaming successes sent 1 and 3 ms late, 100 ms apart as planned.

    A: lag 1, latency 40, TTFT 10, usage     -> from intended 41, good (TTFT <= 20)
    B: lag 3, latency 60, TTFT 30, tokenizer -> from intended 63, not good
    """
    return compute_metrics(
        [
            record(
                1,
                scheduled_wall_ns=BASE_WALL_NS - 1 * MS,
                latency_ns=40 * MS,
                response_times_ns=[10 * MS, 20 * MS],
                output_tokens=3,
                output_tokens_source="usage",
            ),
            record(
                2,
                scheduled_wall_ns=BASE_WALL_NS + 99 * MS,
                started_wall_ns=BASE_WALL_NS + 102 * MS,
                latency_ns=60 * MS,
                response_times_ns=[30 * MS, 35 * MS],
                output_tokens=3,
                output_tokens_source="tokenizer",
            ),
        ],
        goodput={"time_to_first_token": 20},
    )


def test_json_export_has_the_scheduled_and_goodput_figures(tmp_path: Path, scheduled_metrics: RunMetrics) -> None:
    path = tmp_path / "profile_export.json"
    write_profile_export_json(path, scheduled_metrics, {})
    document = orjson.loads(path.read_bytes())
    run = document["run"]
    assert run["achieved_request_rate"] == pytest.approx(1 / 0.102)
    assert run["scheduled_request_rate"] == pytest.approx(10.0)
    assert run["benchmark_duration_s"] == pytest.approx(0.162)
    assert run["goodput"] == pytest.approx(1 / 0.162)
    assert run["good_request_fraction"] == 0.5
    assert run["goodput_slos"] == {"time_to_first_token": 20.0}
    assert run["output_tokens_source"] == {"tokenizer": 1, "usage": 1}
    assert (document["metrics"]["send_lag"]["min"], document["metrics"]["send_lag"]["max"]) == (1.0, 3.0)
    assert document["metrics"]["request_latency_from_intended"]["max"] == 63.0
    assert document["metrics"]["time_to_first_token_from_intended"]["min"] == 11.0


def test_csv_export_has_the_scheduled_and_goodput_figures(tmp_path: Path, scheduled_metrics: RunMetrics) -> None:
    path = tmp_path / "profile_export.csv"
    write_profile_export_csv(path, scheduled_metrics)
    rows = list(csv.reader(path.read_text().splitlines()))
    by_name = {row[0]: row for row in rows[1:] if row}
    assert float(by_name["send_lag"][2]) == 2.0  # avg
    assert by_name["request_latency_from_intended"][1] == "ms"
    assert float(by_name["scheduled_request_rate"][1]) == pytest.approx(10.0)
    assert float(by_name["good_request_fraction"][1]) == 0.5
    assert by_name["output_tokens_source:usage"] == ["output_tokens_source:usage", "1"]
    assert by_name["output_tokens_source:tokenizer"] == ["output_tokens_source:tokenizer", "1"]
    assert by_name["goodput_slo:time_to_first_token"] == ["goodput_slo:time_to_first_token", "20.0"]


def test_console_shows_the_scheduled_and_goodput_figures_when_present(scheduled_metrics: RunMetrics) -> None:
    console = Console(record=True, width=160)
    render_results(scheduled_metrics, title="Results", console=console)
    lines = console.export_text().splitlines()

    def line(label: str) -> list[str]:
        return next(line for line in lines if label in line).split()

    assert line("Send Lag (ms)")[-7:] == ["2.00", "1.00", "3.00", "2.98", "2.80", "2.00", "1.00"]
    assert line("Request Latency From Intended Send (ms)")[-7:-4] == ["52.00", "41.00", "63.00"]
    assert line("Time to First Token From Intended Send (ms)")[-6] == "11.00"
    assert line("Scheduled Request Rate (req/s)")[-1] == "10.00"
    assert line("Achieved Request Rate (req/s)")[-1] == "9.80"
    assert line("Goodput (req/s)")[-1] == "6.17"
    assert line("Good Requests (% of requests)")[-1] == "50.00"
    assert line("Goodput SLOs")[-1] == "time_to_first_token:20"
    assert line("Output Tokens From")[-4:] == ["tokenizer", "1,", "usage", "1"]


def test_console_leaves_out_what_a_closed_loop_run_does_not_have(metrics: RunMetrics) -> None:
    console = Console(record=True, width=160)
    render_results(metrics, title="Results", console=console)
    text = console.export_text()
    for label in ("Send Lag", "From Intended", "Scheduled", "Goodput", "Good Requests"):
        assert label not in text
    assert "Output Tokens From" not in text


@pytest.fixture
def two_node_metrics() -> RunMetrics:
    """Node a: two successes (latency 40 and 60 ms) on two workers, 0.2 ms clock bound; node b: one
    HTTP 500 and a lost record (node "") of its worker. Duration 0.5 s."""
    records = [
        record(1, node="a", worker_id="w0", latency_ns=40 * MS, output_tokens=3),
        record(2, node="a", worker_id="w1", latency_ns=60 * MS, output_tokens=5),
        record(3, node="b", worker_id="w2", latency_ns=500 * MS, status_code=500, error_type="http_error"),
        record(4, node="", worker_id="w2", error_type="lost"),
    ]
    records[0] |= {"clock_offset_bound_ns": 200_000}
    return compute_metrics(records)


def test_json_export_has_the_figures_by_node(tmp_path: Path, two_node_metrics: RunMetrics) -> None:
    path = tmp_path / "profile_export.json"
    write_profile_export_json(path, two_node_metrics, {})
    document = orjson.loads(path.read_bytes())
    assert list(document["by_node"]) == ["a", "b"]
    a, b = document["by_node"]["a"], document["by_node"]["b"]
    assert (a["workers"], a["request_count"], a["success_count"], a["error_count"]) == (2, 2, 2, 0)
    assert a["request_throughput"] == pytest.approx(4.0)
    assert a["output_token_throughput"] == pytest.approx(16.0)
    assert (a["request_latency_p50_ms"], a["clock_offset_bound_ms"]) == (50.0, 0.2)
    assert (b["workers"], b["request_count"], b["error_count"], b["lost_count"]) == (1, 2, 1, 1)
    assert (b["send_lag_p50_ms"], b["request_latency_p99_ms"], b["clock_offset_bound_ms"]) == (None, None, None)
    assert (document["run"]["nodes"], document["run"]["clock_offset_bound_ms"]) == (2, 0.2)


def test_csv_export_has_the_node_table(tmp_path: Path, two_node_metrics: RunMetrics) -> None:
    path = tmp_path / "profile_export.csv"
    write_profile_export_csv(path, two_node_metrics)
    rows = list(csv.reader(path.read_text().splitlines()))
    header = rows.index(list(NODES_HEADER))
    assert rows[header - 1] == []
    assert NODES_HEADER[0] == "Node"
    assert NODES_HEADER[-1] == "Latency p99"
    node_a = dict(zip(NODES_HEADER, rows[header + 1], strict=True))
    assert node_a["Node"] == "a"
    assert (node_a["Workers"], node_a["Requests"], node_a["Successes"], node_a["Lost"]) == ("2", "2", "2", "0")
    assert float(node_a["Request Throughput"]) == pytest.approx(4.0)
    assert float(node_a["Latency p50"]) == 50.0
    assert (node_a["Send Lag p50"], node_a["Send Lag p99"]) == ("", "")
    node_b = dict(zip(NODES_HEADER, rows[header + 2], strict=True))
    assert (node_b["Node"], node_b["Errors"], node_b["Lost"], node_b["Latency p99"]) == ("b", "1", "1", "")
    # The errors table still follows, after a blank line.
    assert rows[header + 3 : header + 5] == [[], ["Error Type", "Count", "Sample Message"]]
    by_name = {row[0]: row for row in rows if row}
    assert by_name["nodes"] == ["nodes", "2"]
    assert by_name["clock_offset_bound_ms"] == ["clock_offset_bound_ms", "0.2"]


def test_console_shows_a_node_table_for_more_than_one_node(two_node_metrics: RunMetrics) -> None:
    console = Console(record=True, width=160)
    render_results(two_node_metrics, title="Results", console=console)
    lines = console.export_text().splitlines()
    assert any("By node" in line for line in lines)
    node_a = next(line for line in lines if line.split()[:1] == ["a"]).split()
    # Node, workers, requests, successes, errors, cancelled, lost, req/s, tokens/s, latency p50/p99, bound.
    assert node_a == ["a", "2", "2", "2", "0", "0", "0", "4.00", "16.00", "50.00", "59.80", "0.20"]
    node_b = next(line for line in lines if line.split()[:1] == ["b"]).split()
    assert node_b == ["b", "1", "2", "0", "1", "0", "1", "0.00", "0.00", "n/a", "n/a", "n/a"]
    assert "Send lag" not in console.export_text()  # no node has a schedule
    assert next(line for line in lines if "Nodes" in line).split()[-1] == "2"
    assert next(line for line in lines if "Clock Offset Bound (ms)" in line).split()[-1] == "0.20"


def test_console_has_no_node_table_for_one_node(metrics: RunMetrics) -> None:
    assert metrics.nodes == 1
    console = Console(record=True, width=160)
    render_results(metrics, title="Results", console=console)
    text = console.export_text()
    assert "By node" not in text
    assert "Nodes" not in text
    assert "Clock Offset Bound" not in text


def test_records_read_in_parts_give_the_columns_of_one_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "records.jsonl"
    written = [
        record(i, latency_ns=(i + 1) * MS, response_times_ns=[MS // 2, MS], output_tokens=2, node=f"n{i % 3}")
        for i in range(40)
    ]
    lines = [orjson.dumps(r) + b"\n" for r in written]
    lines.insert(25, b"{torn\n")  # in the middle: counted, and numbered across parts
    path.write_bytes(b"".join(lines))
    whole = read_record_columns(path)
    monkeypatch.setattr(records_jsonl, "PART_MIN_BYTES", 1)  # four parts of a small file, three in children

    parts = read_record_columns(path, max_parts=4)

    assert (parts.skipped_lines, parts.first_skipped_line) == (whole.skipped_lines, whole.first_skipped_line) == (1, 26)
    assert metrics_of_columns(parts.columns) == metrics_of_columns(whole.columns) == compute_metrics(written)
    assert parts.columns.node_names == ["n0", "n1", "n2"]
