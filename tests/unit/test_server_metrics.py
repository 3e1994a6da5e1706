"""Parsing a server's Prometheus text and summarising scrapes over the profiling window."""

from __future__ import annotations

from typing import Any

import pytest

from aiperf_hpc.core.record_columns import record_columns
from aiperf_hpc.core.server_metrics import (
    NotPrometheusText,
    parse_metrics_text,
    profiling_window_ns,
    profiling_window_of_columns,
    success_key,
    summarize_server_metrics,
)

# Shaped like vLLM 0.x V1's /metrics: two engines, extra labels, metrics we do not read.
VLLM_TEXT = """\
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 1234.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 3.0
vllm:num_requests_running{engine="1",model_name="tiny"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny"} 1.0
vllm:num_requests_waiting{engine="1",model_name="tiny"} 0.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="tiny"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="tiny"} 0.75
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="tiny"} 100.0
vllm:prompt_tokens_total{engine="1",model_name="tiny"} 50.0
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="tiny"} 40.0
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="tiny"} 1.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="tiny"} 4.0
vllm:request_success_total{engine="1",finished_reason="length",model_name="tiny"} 2.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="tiny"} 5.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="tiny"} 7.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="tiny"} 7.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="tiny"} 0.7
# TYPE vllm:time_per_output_token_seconds histogram
vllm:time_per_output_token_seconds_count{engine="0",model_name="tiny"} 20.0
vllm:time_per_output_token_seconds_sum{engine="0",model_name="tiny"} 0.4
"""


def test_parse_sums_label_sets_averages_kv_usage_and_keeps_success_reasons() -> None:
    values = parse_metrics_text(VLLM_TEXT)

    assert values == {
        "vllm:num_requests_running": 5.0,
        "vllm:num_requests_waiting": 1.0,
        "vllm:kv_cache_usage_perc": 0.5,
        "vllm:prompt_tokens_total": 150.0,
        "vllm:generation_tokens_total": 40.0,
        success_key("stop"): 1.0,
        success_key("length"): 6.0,
        "vllm:time_to_first_token_seconds_count": 7.0,
        "vllm:time_to_first_token_seconds_sum": 0.7,
        # the older name of the inter-token latency is read as the current one
        "vllm:inter_token_latency_seconds_count": 20.0,
        "vllm:inter_token_latency_seconds_sum": 0.4,
    }


@pytest.mark.parametrize("text", ["", '{"detail":"Not Found"}', "<html><body>404</body></html>", "404: Not Found"])
def test_parse_refuses_what_is_not_prometheus_text(text: str) -> None:
    with pytest.raises(NotPrometheusText):
        parse_metrics_text(text)


def scrape(started_ns: int, values: dict[str, float], url: str = "http://s/metrics") -> dict[str, Any]:
    return {"url": url, "started_wall_ns": started_ns, "wall_ns": started_ns + 5, "values": values}


def counters(tokens: float, hits: float, queries: float, running: float, **extra: float) -> dict[str, float]:
    return {
        "vllm:generation_tokens_total": tokens,
        "vllm:prefix_cache_hits_total": hits,
        "vllm:prefix_cache_queries_total": queries,
        "vllm:num_requests_running": running,
        **extra,
    }


def test_counters_increase_from_the_last_scrape_before_the_window_to_the_first_after_it() -> None:
    lines = [
        scrape(0, counters(1000, 10, 100, 0)),  # long before: not the baseline
        scrape(100, counters(1100, 20, 200, 0)),  # answered (at 105) before the window began: baseline
        scrape(200, counters(1150, 30, 300, 4)),
        scrape(300, counters(1300, 60, 400, 8)),
        scrape(400, counters(1400, 70, 500, 0)),  # sent after the window ended: the end
        scrape(500, counters(9999, 80, 600, 0)),  # after: ignored
        {"url": "http://s/metrics", "started_wall_ns": 450, "wall_ns": 460, "error": "answered HTTP 500"},
    ]

    (summary,) = summarize_server_metrics(lines, (150, 350)).values()

    assert summary["counters"] == {"generation_tokens": 300.0, "prefix_cache_queries": 300.0, "prefix_cache_hits": 50.0}
    assert summary["prefix_cache_hit_rate"] == pytest.approx(50 / 300)
    # gauges: only the scrapes sent inside the window
    running = summary["gauges"]["num_requests_running"]
    assert running == {"mean": 6.0, "max": 8.0, "p50": 6.0, "p99": pytest.approx(7.96)}
    assert summary["scrapes"] == 6 and summary["scrape_errors"] == 1


def test_a_counter_reset_counts_as_a_restart_from_zero() -> None:
    lines = [scrape(0, counters(100, 0, 0, 0)), scrape(10, counters(150, 0, 0, 0)), scrape(20, counters(30, 0, 0, 0))]

    (summary,) = summarize_server_metrics(lines, None).values()

    assert summary["counters"]["generation_tokens"] == 50 + 30
    assert summary["prefix_cache_hit_rate"] is None  # no query: no rate


def test_success_counts_by_reason_and_histogram_means_over_the_window() -> None:
    before = {success_key("length"): 2.0, "vllm:e2e_request_latency_seconds_sum": 1.0}
    before["vllm:e2e_request_latency_seconds_count"] = 2.0
    after = {success_key("length"): 7.0, success_key("stop"): 3.0, "vllm:e2e_request_latency_seconds_sum": 3.0}
    after["vllm:e2e_request_latency_seconds_count"] = 10.0

    (summary,) = summarize_server_metrics([scrape(0, before), scrape(10, after)], None).values()

    # "stop" appeared with its first event: it counts from zero
    assert summary["request_success"] == {"length": 5.0, "stop": 3.0}
    assert summary["histograms_ms"] == {"e2e_request_latency": {"mean": pytest.approx(250.0), "count": 8.0}}
    assert summary["counters"] == {}  # what the server does not export is left out, not 0
    assert "num_requests_running" not in summary["gauges"]


def test_each_url_is_summarised_on_its_own_and_a_url_that_never_answered_has_only_counts() -> None:
    lines = [
        scrape(0, counters(0, 0, 0, 1), url="http://a/metrics"),
        {"url": "http://b/metrics", "started_wall_ns": 0, "wall_ns": 1, "error": "no answer within 3 s"},
        scrape(10, counters(8, 0, 0, 1), url="http://a/metrics"),
    ]

    summaries = summarize_server_metrics(lines, None)

    assert list(summaries) == ["http://a/metrics", "http://b/metrics"]
    assert summaries["http://a/metrics"]["counters"]["generation_tokens"] == 8.0
    assert summaries["http://b/metrics"] == {"scrapes": 0, "scrape_errors": 1}


def test_the_profiling_window_spans_first_start_to_last_end_of_profiling_records() -> None:
    records = [
        {"phase": "warmup", "started_wall_ns": 0, "latency_ns": 10},
        {"phase": "profiling", "started_wall_ns": 100, "latency_ns": 50},
        {"phase": "profiling", "started_wall_ns": 120, "latency_ns": 200},
        {"phase": "profiling", "started_wall_ns": 130, "latency_ns": None, "error_type": "connection_error"},
        {"phase": "profiling", "started_wall_ns": 9999, "error_type": "lost"},
    ]

    assert profiling_window_ns(records) == (100, 320)
    assert profiling_window_ns(records[:1]) is None
    assert profiling_window_of_columns(record_columns(records)) == (100, 320)
    assert profiling_window_of_columns(record_columns(records[:1])) is None
