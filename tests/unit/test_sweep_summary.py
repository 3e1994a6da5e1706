"""The sweep summary: one row per swept value in JSON, CSV and a console table."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from aiperf_hpc.core.metrics import RunMetrics, compute_metrics
from aiperf_hpc.protocol.messages import RequestRecord
from aiperf_hpc.results.sweep import SWEEP_COLUMNS, render_sweep_summary, sweep_summary_rows, write_sweep_summary

MS = 1_000_000
BASE_WALL_NS = 1_700_000_000_000_000_000


def record(credit_id: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "credit_id": credit_id,
        "phase": "profiling",
        "worker_id": "w0",
        "node": "n0",
        "conversation_index": credit_id,
        "started_wall_ns": BASE_WALL_NS,
    }
    return RequestRecord(**(base | fields)).model_dump(mode="json")


def closed_loop_run(ttft_ms: int) -> RunMetrics:
    """Two streaming successes started together, TTFT `ttft_ms`, latency 2 * TTFT, 3 tokens out,
    and one HTTP 503: duration 2 * TTFT."""
    success = {"latency_ns": 2 * ttft_ms * MS, "response_times_ns": [ttft_ms * MS], "output_tokens": 3}
    return compute_metrics(
        [record(1, **success), record(2, **success), record(3, latency_ns=MS, status_code=503, error_type="http_error")]
    )


def rate_run() -> RunMetrics:
    """Two successes scheduled 100 ms apart, sent 2 and 4 ms late, latency 10 ms, with a goodput spec
    that only the first meets."""
    return compute_metrics(
        [
            record(1, scheduled_wall_ns=BASE_WALL_NS - 2 * MS, latency_ns=10 * MS),
            record(
                2, scheduled_wall_ns=BASE_WALL_NS + 98 * MS, started_wall_ns=BASE_WALL_NS + 102 * MS, latency_ns=10 * MS
            ),
        ],
        goodput={"request_latency_from_intended": 13},
    )


@pytest.fixture
def closed_loop_rows() -> list[tuple[str, RunMetrics]]:
    return [("concurrency=1", closed_loop_run(10)), ("concurrency=4", closed_loop_run(40))]


def test_rows_hold_the_compared_figures_in_column_order(closed_loop_rows: list[tuple[str, RunMetrics]]) -> None:
    first, second = sweep_summary_rows(closed_loop_rows)
    assert list(first) == list(SWEEP_COLUMNS)
    assert first["value"] == "concurrency=1"
    assert first["request_throughput"] == pytest.approx(2 / 0.02)
    assert first["output_token_throughput"] == pytest.approx(6 / 0.02)
    assert (first["time_to_first_token_p50"], first["time_to_first_token_p99"]) == (10.0, 10.0)
    assert (first["inter_token_latency_p50"], first["inter_token_latency_p99"]) == (5.0, 5.0)  # (20 - 10) / 2
    assert (first["request_latency_p50"], first["request_latency_p99"]) == (20.0, 20.0)
    assert (second["time_to_first_token_p99"], second["request_latency_p50"]) == (40.0, 80.0)
    assert first["error_count"] == 1
    for absent in ("send_lag_p99", "goodput", "good_request_fraction", "achieved_request_rate"):
        assert first[absent] is None  # all started at once: no achieved rate either


def test_rate_rows_carry_send_lag_achieved_rate_and_goodput() -> None:
    (row,) = sweep_summary_rows([("request_rate=10", rate_run())])
    assert row["send_lag_p99"] == pytest.approx(3.98)
    assert row["achieved_request_rate"] == pytest.approx(1 / 0.102)
    assert row["goodput"] == pytest.approx(1 / 0.112)
    assert row["good_request_fraction"] == 0.5
    assert row["time_to_first_token_p50"] is None  # not streaming
    assert row["error_count"] == 0


def test_write_sweep_summary_writes_json_and_csv(
    tmp_path: Path, closed_loop_rows: list[tuple[str, RunMetrics]]
) -> None:
    rows = [*closed_loop_rows, ("request_rate=10", rate_run())]
    path_json, path_csv = tmp_path / "sweep_summary.json", tmp_path / "sweep_summary.csv"
    write_sweep_summary(path_json, path_csv, rows)

    document = orjson.loads(path_json.read_bytes())
    assert [row["value"] for row in document["rows"]] == ["concurrency=1", "concurrency=4", "request_rate=10"]
    assert document["rows"] == orjson.loads(orjson.dumps(sweep_summary_rows(rows)))
    assert document["rows"][0]["send_lag_p99"] is None

    lines = list(csv.reader(path_csv.read_text().splitlines()))
    assert lines[0] == list(SWEEP_COLUMNS)
    assert len(lines) == 4
    by_value = {line[0]: dict(zip(lines[0], line, strict=True)) for line in lines[1:]}
    assert float(by_value["concurrency=4"]["time_to_first_token_p99"]) == 40.0
    assert by_value["concurrency=4"]["send_lag_p99"] == ""
    assert by_value["concurrency=1"]["error_count"] == "1"
    assert float(by_value["request_rate=10"]["send_lag_p99"]) == pytest.approx(3.98)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sweep_summary.csv", "sweep_summary.json"]


def test_render_shows_one_row_per_value_without_columns_no_run_has(
    closed_loop_rows: list[tuple[str, RunMetrics]],
) -> None:
    console = Console(record=True, width=200)
    render_sweep_summary(closed_loop_rows, title="Concurrency sweep", console=console)
    text = console.export_text()
    assert "Concurrency sweep" in text
    assert "TTFT p99" in text
    for absent in ("Send lag", "Goodput", "fraction", "Achieved"):
        assert absent not in text
    row = next(line for line in text.splitlines() if "concurrency=4" in line).split()
    # value, req/s, output tok/s, TTFT p50, p99, ITL p50, p99, latency p50, p99, errors
    assert row == ["concurrency=4", "25.00", "75.00", "40.00", "40.00", "20.00", "20.00", "80.00", "80.00", "1"]


def test_render_shows_rate_columns_when_any_run_has_them(closed_loop_rows: list[tuple[str, RunMetrics]]) -> None:
    console = Console(record=True, width=80, force_terminal=False)  # a Slurm log: rendered wide, not squeezed
    render_sweep_summary([*closed_loop_rows, ("request_rate=10", rate_run())], title="Sweep", console=console)
    lines = console.export_text().splitlines()
    header = " ".join(lines[:4])
    for column in ("Send lag", "Goodput", "fraction", "Achieved"):
        assert column in header
    rate_row = next(line for line in lines if "request_rate=10" in line).split()
    assert rate_row[0] == "request_rate=10"
    assert "3.98" in rate_row  # send lag p99
    assert "0.50" in rate_row  # good fraction
    assert rate_row[-1] == "0"
    closed_row = next(line for line in lines if "concurrency=1" in line).split()
    assert closed_row.count("n/a") == 4  # achieved rate (all started at once), send lag, goodput, good fraction
