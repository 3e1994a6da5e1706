"""The columns spool: frames written while records arrive read back as the columns of the records."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aiperf_hpc.core.record_columns import RecordColumns, record_columns
from aiperf_hpc.results.columns_spool import FRAME_RECORDS, ColumnsSpool, read_spool


def record(index: int) -> dict[str, Any]:
    """Record `index`: every 7th an HTTP error, every 11th a warmup, the node changing half way, and
    a varying number of response times, so frames differ in every column."""
    failed = index % 7 == 3
    times = [] if failed else [1_000 * k + index for k in range(1 + index % 5)]
    return {
        "credit_id": index,
        "phase": "warmup" if index % 11 == 0 else "profiling",
        "worker_id": f"w{index % 3}",
        "node": "n0" if index < 2 * FRAME_RECORDS else "n1",
        "conversation_index": 0,
        "turn_index": 0,
        "scheduled_wall_ns": index * 10 if index % 2 else None,
        "started_wall_ns": 1_000_000 + index * 10,
        "latency_ns": None if failed else 9_000 + index,
        "response_times_ns": times,
        "status_code": 500 if failed else 200,
        "error_type": "http_error" if failed else None,
        "error_message": f"boom {index}" if failed else None,
        "input_tokens": 3,
        "output_tokens": None if failed else len(times),
        "output_tokens_source": None if failed else ("usage" if index % 2 else "chunks"),
        "clock_offset_ns": 0,
        "clock_offset_bound_ns": None if index % 4 else 50_000,
    }


def assert_same(actual: RecordColumns, expected: RecordColumns) -> None:
    for field in fields(RecordColumns):
        got, want = getattr(actual, field.name), getattr(expected, field.name)
        if isinstance(want, np.ndarray):
            np.testing.assert_array_equal(got, want, err_msg=field.name)
            assert got.dtype == want.dtype, field.name
        else:
            assert got == want, field.name


def test_records_added_in_batches_read_back_as_the_columns_of_all_of_them(tmp_path: Path) -> None:
    records = [record(index) for index in range(3 * FRAME_RECORDS + 123)]
    spool = ColumnsSpool(tmp_path / "spool.npy")
    for start in range(0, len(records), 1000):  # batches that do not line up with frames
        spool.add(records[start : start + 1000])

    columns = spool.read()

    assert columns is not None
    assert_same(columns, record_columns(records))
    assert columns.node_names == ["n0", "n1"]
    spool.close()
    assert not (tmp_path / "spool.npy").exists()


def test_an_empty_spool_reads_as_no_records(tmp_path: Path) -> None:
    spool = ColumnsSpool(tmp_path / "spool.npy")
    columns = spool.read()
    assert columns is not None
    assert columns.request_count == 0


def test_a_record_the_columns_cannot_take_stops_the_spool_and_read_says_so(tmp_path: Path) -> None:
    spool = ColumnsSpool(tmp_path / "spool.npy")
    spool.add([record(1), {"credit_id": 2}])  # no phase
    spool.add([record(3)])
    assert spool.read() is None


def test_a_torn_spool_is_an_error_not_fewer_records(tmp_path: Path) -> None:
    path = tmp_path / "spool.npy"
    spool = ColumnsSpool(path)
    spool.add([record(index) for index in range(FRAME_RECORDS)])
    assert spool.read() is not None
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises((ValueError, EOFError)):
        read_spool(path)
