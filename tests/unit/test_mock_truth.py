from __future__ import annotations

import asyncio

import pytest

from aiperf_hpc.mock_server.truth import REQUEST_LOG_SIZE, MockStats, RequestSeen


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
