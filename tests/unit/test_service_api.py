"""The client-group service's pure parts: body validation, masking, Slurm states, progress, OpenAPI, store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aiperf_hpc.rest.models import ClientGroupCreate
from aiperf_hpc.rest.openapi import _to_openapi30, openapi_document
from aiperf_hpc.rest.progress import RecordLineCounter, requests_done_from_metrics
from aiperf_hpc.rest.slurm_runs import JobState, status_of
from aiperf_hpc.rest.store import GroupRow, Store
from aiperf_hpc.rest.validation import BodyError, mask_options, plan_client_group

RUN_DIR = Path("/state/runs/abc")


def plan(options: dict[str, Any], **fields: Any) -> Any:
    body = ClientGroupCreate.model_validate({"launcher": "local", "options": options, **fields})
    return plan_client_group(body, run_dir=RUN_DIR, job_name="aiperf-hpc-abc")


def refusal(options: dict[str, Any], **fields: Any) -> BodyError:
    with pytest.raises(BodyError) as caught:
        plan(options, **fields)
    return caught.value


def test_options_become_the_clis_arguments_with_secrets_only_in_argv() -> None:
    planned = plan({"model": "m", "request_rate": 5, "streaming": True, "api-key": "sk-1", "header": {"X-A": "v"}})
    assert planned.argv == [
        "--model",
        "m",
        "--request-rate",
        "5",
        "--streaming",
        "--api-key",
        "sk-1",
        "--header",
        "X-A:v",
    ]
    assert planned.shown_options["api-key"] == "***" and planned.shown_options["header"] == {"X-A": "***"}
    assert planned.submit is None


def test_requests_expected_counts_warmup_and_is_unknown_for_a_duration() -> None:
    assert plan({"model": "m", "request_count": 30, "warmup_request_count": 5}).requests_expected == 35
    assert plan({"model": "m", "benchmark_duration": 10}).requests_expected is None


@pytest.mark.parametrize(
    ("options", "loc"),
    [
        ({"model": "m", "nope": 1}, ["body", "options", "nope"]),
        ({"model": "m", "request_rate": -1}, ["body", "options", "request_rate"]),
        ({"model": "m", "url": "ftp://x"}, ["body", "options", "url"]),
        ({"request_count": 3}, ["body", "options", "model"]),
        ({"model": "m", "launcher": "slurm"}, ["body", "options", "launcher"]),
        ({"model": "m", "request_rate": [1, 2]}, ["body", "options", "request_rate"]),
    ],
)
def test_a_refused_option_is_named_as_the_body_spells_it(options: dict[str, Any], loc: list[str]) -> None:
    assert refusal(options).loc == loc


def test_slurm_resources_are_checked_as_submit_checks_them() -> None:
    slurm = {"nodes": 1, "workers_per_node": 1, "time": "00:10:00", "partition": "bad name"}
    error = refusal({"model": "m", "url": "http://h:8000"}, launcher="slurm", slurm=slurm)
    assert error.loc == ["body", "slurm", "partition"]
    no_url = refusal({"model": "m"}, launcher="slurm", slurm={**slurm, "partition": None})
    assert no_url.loc == ["body", "options", "url"]
    planned = plan({"model": "m", "url": "http://h:8000"}, launcher="slurm", slurm={**slurm, "partition": "debug"})
    assert planned.submit is not None and planned.submit.artifact_dir == RUN_DIR


def test_header_values_are_masked_in_every_spelling() -> None:
    shown = mask_options({"header": ["A:1", "B:2"], "api_key": "k", "model": "m", "extra-inputs": {"t": 0}})
    assert shown == {"header": ["A:***", "B:***"], "api_key": "***", "model": "m", "extra-inputs": {"t": 0}}


@pytest.mark.parametrize(
    ("state", "cancel_requested", "status"),
    [
        ("PENDING", False, "queued"),
        ("RUNNING", True, "running"),
        ("COMPLETING", False, "running"),
        ("COMPLETED", False, "completed"),
        ("FAILED", False, "failed"),
        ("TIMEOUT", False, "failed"),
        ("CANCELLED", False, "cancelled"),
        ("FAILED", True, "cancelled"),
    ],
)
def test_slurm_states_map_to_statuses(state: str, cancel_requested: bool, status: str) -> None:
    assert status_of(JobState(state, 0), cancel_requested=cancel_requested) == status


def test_record_lines_are_counted_incrementally_and_only_when_complete(tmp_path: Path) -> None:
    counter = RecordLineCounter()
    assert counter.count(tmp_path) is None
    records = tmp_path / "records.jsonl"
    records.write_bytes(b'{"a":1}\n{"a":2}\n{"a"')
    assert counter.count(tmp_path) == 2
    with records.open("ab") as file:
        file.write(b':3}\n{"a":4}\n')
    assert counter.count(tmp_path) == 4
    records.write_bytes(b"{}\n")  # a new run in the same directory
    assert counter.count(tmp_path) == 1


def test_requests_done_sums_the_counter_over_its_labels() -> None:
    text = (
        "# TYPE aiperf_requests_total counter\n"
        'aiperf_requests_total{node="n1"} 3\n'
        'aiperf_requests_total{node="n2"} 4\n'
        'aiperf_requests_created{node="n1"} 1.7e9\n'
    )
    assert requests_done_from_metrics(text) == 7
    assert requests_done_from_metrics("# TYPE other counter\nother_total 1\n") is None
    assert requests_done_from_metrics("not { prometheus") is None


def test_openapi_30_has_no_2020_12_constructs() -> None:
    document = openapi_document("1.0")
    text = str(document)
    assert document["openapi"] == "3.0.3"
    assert "'type': 'null'" not in text and "'const'" not in text and "'examples'" not in text
    group = document["components"]["schemas"]["ClientGroup"]["properties"]
    assert group["slurm"] == {"allOf": [{"$ref": "#/components/schemas/SlurmResources"}], "nullable": True}
    assert group["exit_code"]["nullable"] is True and group["exit_code"]["type"] == "integer"
    assert _to_openapi30({"const": "ok"}) == {"enum": ["ok"]}


def test_the_store_keeps_rows_across_connections(tmp_path: Path) -> None:
    row = GroupRow(
        id="abc",
        name=None,
        launcher="local",
        status="running",
        options={"model": "m"},
        slurm=None,
        artifact_dir="/x",
        created_wall_ns=1,
        pid=42,
        pid_start_ticks=7,
    )
    store = Store(tmp_path)
    store.insert(row)
    updated = store.update("abc", status="completed", exit_code=0, summary={"request_count": 3}, cancel_requested=True)
    store.close()
    reopened = Store(tmp_path)
    assert reopened.all() == [updated]
    assert updated.summary == {"request_count": 3} and updated.cancel_requested is True and updated.pid == 42
    assert reopened.get("nope") is None
    with pytest.raises(KeyError):
        reopened.update("nope", status="failed")
    reopened.close()
