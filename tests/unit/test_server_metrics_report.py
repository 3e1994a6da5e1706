"""The report of a run whose server /metrics were scraped: the queue and KV-cache figure, the summary."""

from __future__ import annotations

from pathlib import Path

import orjson

from aiperf_hpc.core.metrics import compute_metrics
from aiperf_hpc.core.server_metrics import profiling_window_ns, summarize_server_metrics
from aiperf_hpc.reporting.report import write_report
from aiperf_hpc.reporting.series import server_series
from aiperf_hpc.results.json_export import write_profile_export_json
from aiperf_hpc.results.records_jsonl import read_records_jsonl
from tests.unit.reporting_fixtures import BASE_WALL_NS, MS, write_baseline_run

URL = "http://127.0.0.1:8000/metrics"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def scrapes() -> list[dict[str, object]]:
    def values(tokens: float, running: float, usage: float) -> dict[str, float]:
        return {
            "vllm:generation_tokens_total": tokens,
            "vllm:num_requests_running": running,
            "vllm:num_requests_waiting": 0.0,
            "vllm:kv_cache_usage_perc": usage,
        }

    return [
        {"url": URL, "started_wall_ns": BASE_WALL_NS - 100 * MS, "wall_ns": BASE_WALL_NS - 99 * MS,
         "values": values(100, 0, 0.0)},
        {"url": URL, "started_wall_ns": BASE_WALL_NS + 200 * MS, "wall_ns": BASE_WALL_NS + 201 * MS,
         "values": values(120, 4, 0.5)},
        {"url": URL, "started_wall_ns": BASE_WALL_NS + 900 * MS, "wall_ns": BASE_WALL_NS + 901 * MS,
         "values": values(144, 0, 0.0)},
    ]  # fmt: skip


def test_series_are_per_url_from_the_first_request_and_kv_usage_in_percent() -> None:
    (series,) = server_series(scrapes(), [{"phase": "profiling", "started_wall_ns": BASE_WALL_NS}])

    assert series.url == URL
    assert series.at_s.tolist() == [-0.1, 0.2, 0.9]
    assert series.running.tolist() == [0.0, 4.0, 0.0]
    assert series.kv_cache_usage_pct.tolist() == [0.0, 50.0, 0.0]


def test_report_draws_the_server_figure_and_shows_the_summary_then_drops_a_stale_figure(tmp_path: Path) -> None:
    metrics = write_baseline_run(tmp_path)
    records = read_records_jsonl(tmp_path / "records.jsonl").records
    (tmp_path / "server_metrics.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in scrapes()))
    summary = summarize_server_metrics(scrapes(), profiling_window_ns(records))
    assert metrics == compute_metrics(records)
    write_profile_export_json(tmp_path / "profile_export.json", metrics, {}, server_metrics=summary)

    page = write_report(tmp_path).read_text()

    assert (tmp_path / "plots" / "server_metrics.png").read_bytes().startswith(PNG_MAGIC)
    assert f"Server metrics: {URL}" in page
    assert '<td>generation tokens (increase)</td><td class="num">44.00</td>' in page

    (tmp_path / "server_metrics.jsonl").unlink()
    write_report(tmp_path)
    assert not (tmp_path / "plots" / "server_metrics.png").exists()
