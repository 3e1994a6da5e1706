"""write_results, the one path from records.jsonl to the exports, and recompute, which reuses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from aiperf_hpc.artifacts import RUN_CONFIG_FILE
from aiperf_hpc.config import EndpointConfig, MetricsConfig, RunConfig
from aiperf_hpc.errors import RunError
from aiperf_hpc.protocol.messages import RequestRecord
from aiperf_hpc.results.pipeline import (
    RunEnd,
    recompute,
    run_config_metadata,
    write_results,
    write_run_config,
)

MS = 1_000_000
BASE_WALL_NS = 1_700_000_000_000_000_000


def record(credit_id: int, ttft_ms: int) -> bytes:
    """A streaming success started `credit_id` x 10 ms into the run, 2 tokens, 20 ms long."""
    return orjson.dumps(
        RequestRecord(
            credit_id=credit_id,
            phase="profiling",
            worker_id="w0",
            node="n0",
            conversation_index=0,
            started_wall_ns=BASE_WALL_NS + credit_id * 10 * MS,
            latency_ns=20 * MS,
            response_times_ns=[ttft_ms * MS, 20 * MS],
            output_tokens=2,
        ).model_dump(mode="json")
    )


def config() -> RunConfig:
    return RunConfig(
        endpoint=EndpointConfig(model="m", url="http://127.0.0.1:1", api_key="secret"),
        metrics=MetricsConfig(goodput={"time_to_first_token": 10.0}),
        workers=3,
    )


def run_dir_of(tmp_path: Path, ttfts_ms: list[int], tail: bytes = b"") -> Path:
    """A run dir as the records service leaves it: run_config.json, then records.jsonl."""
    write_run_config(tmp_path, run_config_metadata(config(), started_wall_ns=BASE_WALL_NS))
    lines = b"".join(record(i, ttft) + b"\n" for i, ttft in enumerate(ttfts_ms))
    (tmp_path / "records.jsonl").write_bytes(lines + tail)
    return tmp_path


def export_of(run_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((run_dir / "profile_export.json").read_bytes())
    return document


def test_run_config_holds_the_redacted_config_and_what_is_known_at_configure_time(tmp_path: Path) -> None:
    write_run_config(tmp_path, run_config_metadata(config(), started_wall_ns=BASE_WALL_NS))
    written = orjson.loads((tmp_path / RUN_CONFIG_FILE).read_bytes())
    assert written["config"]["endpoint"]["api_key"] == "***"
    assert written["config"]["metrics"]["goodput"] == {"time_to_first_token": 10.0}
    assert (written["workers"], written["started_wall_ns"]) == (3, BASE_WALL_NS)
    assert {"random_seed", "hostname", "slurm", "versions"} <= set(written)
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, then renamed


def test_write_results_judges_goodput_from_the_run_config_and_writes_both_exports(tmp_path: Path) -> None:
    run_dir = run_dir_of(tmp_path, [5, 8, 15, 30])
    run_config = orjson.loads((run_dir / RUN_CONFIG_FILE).read_bytes())
    end = RunEnd(status="completed", missing_records=0, dataset={"conversations": 4}, finished_wall_ns=7)

    results = write_results(run_dir, run_config, end)

    assert results.metrics.request_count == 4
    assert results.metrics.good_request_fraction == 0.5  # TTFT 5 and 8 ms meet the 10 ms SLO
    document = export_of(run_dir)
    assert document["run"]["good_request_fraction"] == 0.5
    metadata = document["metadata"]
    assert (metadata["status"], metadata["missing_records"], metadata["torn_record_lines"]) == ("completed", 0, 0)
    assert (metadata["dataset"], metadata["finished_wall_ns"], metadata["workers"]) == ({"conversations": 4}, 7, 3)
    assert metadata["config"] == run_config["config"]
    assert "recomputed" not in metadata
    assert (run_dir / "profile_export.csv").read_text().startswith("Metric,Unit,")


def test_recompute_after_a_crash_skips_the_torn_line_and_says_what_it_cannot_know(tmp_path: Path) -> None:
    run_dir = run_dir_of(tmp_path, [5, 8, 15], tail=record(3, 1)[:30])

    results = recompute(run_dir)

    assert results.metrics.request_count == 3
    assert results.torn_record_lines == 1
    metadata = export_of(run_dir)["metadata"]
    assert metadata["recomputed"] is True
    assert (metadata["status"], metadata["missing_records"], metadata["torn_record_lines"]) == ("unknown", None, 1)
    assert export_of(run_dir)["run"]["goodput_slos"] == {"time_to_first_token": 10.0}


def test_recompute_gives_what_the_records_service_wrote_and_keeps_its_end_of_run_facts(tmp_path: Path) -> None:
    run_dir = run_dir_of(tmp_path, [5, 8, 15, 30])
    run_config = orjson.loads((run_dir / RUN_CONFIG_FILE).read_bytes())
    write_results(run_dir, run_config, RunEnd(status="interrupted", missing_records=2, finished_wall_ns=9))
    before = export_of(run_dir)

    recompute(run_dir)

    after = export_of(run_dir)
    assert {key: after[key] for key in ("run", "metrics", "by_node")} == {
        key: before[key] for key in ("run", "metrics", "by_node")
    }
    assert after["metadata"] == before["metadata"] | {"recomputed": True}


def test_recompute_without_run_config_has_no_goodput(tmp_path: Path) -> None:
    run_dir = run_dir_of(tmp_path, [5, 30])
    (run_dir / RUN_CONFIG_FILE).unlink()

    results = recompute(run_dir)

    assert results.metrics.request_count == 2
    assert results.metrics.goodput_slos is None


def test_recompute_refuses_a_directory_without_records(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"no records\.jsonl in"):
        recompute(tmp_path)


def test_recompute_refuses_a_run_config_that_is_not_json(tmp_path: Path) -> None:
    run_dir = run_dir_of(tmp_path, [5])
    (run_dir / RUN_CONFIG_FILE).write_text("{torn")
    with pytest.raises(RunError, match=r"run_config\.json is not valid JSON"):
        recompute(run_dir)
