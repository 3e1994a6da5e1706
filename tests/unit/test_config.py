from __future__ import annotations

import pytest
from pydantic import ValidationError

from aiperf_hpc.config import EndpointConfig, LoadConfig, RunConfig


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/chat/completions"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1/chat/completions"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/chat/completions"),
        ("http://h/v1/chat/completions", "http://h/v1/chat/completions"),
    ],
)
def test_request_url(url: str, expected: str) -> None:
    assert EndpointConfig(url=url, model="m").request_url == expected


@pytest.mark.parametrize("url", ["ftp://h", "127.0.0.1:8000", "http://", "http://h:99999"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        EndpointConfig(url=url, model="m")


def test_count_and_duration_exclude_each_other() -> None:
    with pytest.raises(ValidationError, match="cannot be used together"):
        LoadConfig(request_count=3, benchmark_duration_s=1.0)


def test_worker_count_never_exceeds_concurrency() -> None:
    config = RunConfig(endpoint=EndpointConfig(model="m"), load=LoadConfig(concurrency=1))
    assert config.worker_count == 1
    assert RunConfig(endpoint=EndpointConfig(model="m"), workers=3).worker_count == 3


def test_configs_are_frozen_and_strict() -> None:
    config = EndpointConfig(model="m")
    with pytest.raises(ValidationError):
        config.model = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        EndpointConfig(model="m", unknown=1)  # type: ignore[call-arg]


def test_redacted_masks_secrets() -> None:
    config = RunConfig(endpoint=EndpointConfig(model="m", api_key="sk-secret", headers={"X-Token": "t0k"}))
    data = config.redacted()
    assert data["endpoint"]["api_key"] == "***"
    assert data["endpoint"]["headers"] == {"X-Token": "***"}
    assert "sk-secret" not in str(data) and "t0k" not in str(data)


def test_failure_threshold_is_judged_from_ten_records_on() -> None:
    from aiperf_hpc.config import MetricsConfig

    threshold = MetricsConfig(failure_threshold_pct=20.0)
    assert not threshold.failure_threshold_crossed(received=9, errors=9)  # too few to judge
    assert not threshold.failure_threshold_crossed(received=10, errors=2)  # 20% is not more than 20%
    assert threshold.failure_threshold_crossed(received=10, errors=3)
    assert not MetricsConfig().failure_threshold_crossed(received=100, errors=100)
    with pytest.raises(ValidationError):
        MetricsConfig(failure_threshold_pct=0)


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        ({"request_count": 1}, 1),
        ({"request_count": 3, "warmup_request_count": 5}, 5),  # each phase starts at conversation 0
        ({"request_count": 500}, 100),
        ({"benchmark_duration_s": 5.0}, 100),
        ({"request_count": 3, "warmup_duration_s": 1.0}, 100),
    ],
)
def test_a_short_run_builds_only_the_synthetic_prompts_it_can_send(load: dict[str, float], expected: int) -> None:
    config = RunConfig(endpoint=EndpointConfig(model="m", url="http://127.0.0.1:1"), load=LoadConfig(**load))
    assert config.inputs.num_entries == 100
    assert config.synthetic_entries == expected
