from __future__ import annotations

import asyncio

import pytest

from aiperf_hpc.mock_server.truth import LATENCY_LOG_SIZE, REQUEST_LOG_SIZE, MockStats, RequestSeen


def _seen(index: int) -> RequestSeen:
    return RequestSeen("chat", float(index), "m", 1, f"prompt {index}", None)


def test_request_log_keeps_the_newest_entries_up_to_its_size() -> None:
    stats = MockStats()
    for index in range(REQUEST_LOG_SIZE + 2):
        stats.on_request_seen(_seen(index))

    log = stats.requests()
    assert REQUEST_LOG_SIZE == 100_000
    assert len(log) == REQUEST_LOG_SIZE
    assert log[0]["arrival_s"] == 2.0
    assert log[-1] == {
        "endpoint": "chat",
        "arrival_s": float(REQUEST_LOG_SIZE + 1),
        "model": "m",
        "messages_count": 1,
        "last_user_text_prefix": f"prompt {REQUEST_LOG_SIZE + 1}",
        "max_tokens": None,
    }


def test_reset_empties_the_log_but_keeps_requests_in_flight() -> None:
    stats = MockStats()
    stats.on_arrival()
    stats.on_arrival()
    stats.on_request_seen(_seen(0))
    stats.on_departure()
    stats.reset()

    assert stats.requests() == []
    assert (stats.requests_total, stats.requests_in_flight, stats.max_in_flight) == (0, 1, 1)


async def test_wait_idle_returns_once_the_last_request_departs() -> None:
    stats = MockStats()
    await stats.wait_idle()  # idle from the start
    stats.on_arrival()
    stats.on_arrival()
    stats.on_departure()
    with pytest.raises(asyncio.TimeoutError):  # one request is still in flight: it cannot return
        await asyncio.wait_for(stats.wait_idle(), timeout=0.01)
    stats.on_departure()
    await stats.wait_idle()


def test_stream_times_become_ttft_and_per_token_itl_in_milliseconds() -> None:
    stats = MockStats()
    stats.on_stream_written(arrived_s=10.0, first_token_s=10.05, last_token_s=10.545, tokens=100)
    stats.on_stream_written(arrived_s=20.0, first_token_s=20.07, last_token_s=20.07, tokens=1)

    truth = stats.snapshot(50.0, 5.0)
    ttft, itl = truth["actual_ttft_ms"], truth["actual_itl_ms"]
    assert ttft["count"] == 2
    assert ttft["p50"] == pytest.approx(60.0)
    assert ttft["mean"] == pytest.approx(60.0)
    assert ttft["max"] == pytest.approx(70.0)
    assert ttft["p50"] < ttft["p99"] < ttft["max"]
    assert itl["count"] == 1  # the one-token stream has no gap
    assert itl["p50"] == pytest.approx(5.0)
    assert (truth["ttft_ms"], truth["itl_ms"]) == (50.0, 5.0)


def test_stream_times_keep_the_newest_and_reset_empties_them() -> None:
    stats = MockStats()
    for index in range(LATENCY_LOG_SIZE + 1):
        stats.on_stream_written(0.0, 1.0 if index == 0 else 0.002, 0.002, 1)
    assert stats.snapshot(0.0, 0.0)["actual_ttft_ms"]["count"] == LATENCY_LOG_SIZE
    assert stats.snapshot(0.0, 0.0)["actual_ttft_ms"]["max"] == pytest.approx(2.0)  # the 1 s one is gone

    stats.reset()
    assert stats.snapshot(0.0, 0.0)["actual_ttft_ms"] == {
        "count": 0,
        "mean": None,
        "p50": None,
        "p99": None,
        "max": None,
    }
