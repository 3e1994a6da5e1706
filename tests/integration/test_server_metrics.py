"""The server's /metrics: the mock's agree with its truth, and a real run scrapes them (or is told why not)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from aiperf_hpc.core.server_metrics import parse_metrics_text, success_key
from aiperf_hpc.mock_server import MockServerConfig, create_app
from tests.integration.harness import mock_server, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PROFILE = ["profile", "-m", "mock-model", "--streaming", "--concurrency", "4", "--request-count", "40", "--osl", "6"]


async def test_mock_metrics_agree_with_mock_stats() -> None:
    server = TestServer(create_app(MockServerConfig(error_rate=0.3, random_seed=3)), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    chat = {"model": "mock-model", "messages": [{"role": "user", "content": " ".join(["w"] * 40)}], "stream": True}
    timeout = aiohttp.ClientTimeout(total=20, connect=5, sock_connect=5, sock_read=20)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def send(body: dict[str, Any]) -> int:
                async with session.post(f"{base}/v1/chat/completions", json=body) as response:
                    await response.read()
                    return response.status

            statuses = await asyncio.gather(*(send({**chat, "max_tokens": 1 + k % 4}) for k in range(20)))
            statuses.append(await send({**chat, "stream": False}))  # the default length: finish reason "stop"
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                values = parse_metrics_text(await response.text())
            async with session.get(f"{base}/mock/stats") as response:
                truth = await response.json()
    finally:
        await server.close()

    succeeded = [k for k, status in enumerate(statuses) if status == 200]
    assert 0 < len(succeeded) < len(statuses)  # some errors were injected, and they count no success
    expected_tokens = sum(1 + k % 4 if k < 20 else 16 for k in succeeded)
    assert values["vllm:generation_tokens_total"] == truth["generation_tokens_total"] == expected_tokens
    assert values[success_key("length")] + values[success_key("stop")] == truth["requests_succeeded"] == len(succeeded)
    assert values[success_key("stop")] == (1 if 20 in succeeded else 0)
    assert values["vllm:prompt_tokens_total"] == truth["prompt_tokens_total"] == 40 * len(succeeded)
    # the same prompt again: its two whole blocks of 16 words are found from the second request on
    assert values["vllm:prefix_cache_hits_total"] == truth["prefix_cache_hits_total"] == 32 * (len(succeeded) - 1)
    assert values["vllm:num_requests_running"] == truth["requests_in_flight"] == 0
    assert values["vllm:kv_cache_usage_perc"] == 0.0
    assert values["vllm:e2e_request_latency_seconds_count"] == len(succeeded)


def test_a_run_scrapes_the_default_url_and_the_server_agrees_with_the_records(tmp_path: Path) -> None:
    with mock_server("--ttft-ms", "5") as server:
        run = run_cli([*PROFILE, "-u", server.url, "--slice-duration", "0.2"], tmp_path / "art")
        truth = server.stats()
    assert run.returncode == 0, run.stderr
    url = f"{server.url}/metrics"
    lines = [json.loads(line) for line in (tmp_path / "art" / "server_metrics.jsonl").read_text().splitlines()]
    assert len(lines) >= 2 and {line["url"] for line in lines} == {url}
    assert all("vllm:generation_tokens_total" in line["values"] for line in lines)
    records = run.records()
    output_tokens = sum(r["output_tokens"] for r in records)
    summary = run.export()["server_metrics"][url]
    assert summary["counters"]["generation_tokens"] == output_tokens == truth["generation_tokens_total"] == 40 * 6
    assert sum(summary["request_success"].values()) == run.export()["run"]["success_count"] == 40
    assert summary["gauges"]["num_requests_running"]["max"] <= 4
    assert f"Server metrics: {url}" in run.stdout
    slices = json.loads((tmp_path / "art" / "profile_export_slices.json").read_text())
    assert slices["slice_duration_s"] == 0.2
    assert sum(window["request_count"] for window in slices["slices"]) == 40
    assert (tmp_path / "art" / "profile_export_slices.csv").read_text().startswith("index,start_s,")


def test_no_server_metrics_scrapes_nothing(tmp_path: Path) -> None:
    with mock_server() as server:
        run = run_cli([*PROFILE, "-u", server.url, "--no-server-metrics"], tmp_path / "art")
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "art" / "server_metrics.jsonl").exists()
    assert "server_metrics" not in run.export()
    assert "server metrics" not in run.stderr.lower() and "Server metrics" not in run.stdout
    assert not (tmp_path / "art" / "profile_export_slices.json").exists()


def test_a_metrics_url_that_answers_404_is_one_note_and_the_run_passes(tmp_path: Path) -> None:
    with mock_server() as server:
        missing = f"{server.url}/not-metrics"
        run = run_cli([*PROFILE, "-u", server.url, "--server-metrics-url", missing], tmp_path / "art")
    assert run.returncode == 0, run.stderr
    notes = [line for line in run.stderr.splitlines() if "server metrics" in line]
    assert notes == [f"aiperf-hpc: server metrics: {missing} answered HTTP 404; not scraped"]
    assert not (tmp_path / "art" / "server_metrics.jsonl").exists()
    assert run.export()["run"]["success_count"] == 40
