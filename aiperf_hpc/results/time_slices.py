"""`profile_export_slices.json` and `.csv`: the run's results per time window (`--slice-duration`).

JSON: `{"slice_duration_s": S, "slices": [{"index": 0, "start_s": 0.0, ...}, ...]}` with the fields
of `core.time_slices.SLICE_FIELDS`, null where a window has no value; CSV: one header row of those
fields and one row per window, an empty cell for null.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from aiperf_hpc.artifacts import SLICES_CSV_FILE, SLICES_JSON_FILE
from aiperf_hpc.core.time_slices import SLICE_FIELDS, TimeSlice, compute_time_slices
from aiperf_hpc.results.atomic import write_bytes_atomically


def write_time_slices(run_dir: Path, records: Sequence[Mapping[str, Any]], slice_duration_s: float | None) -> None:
    """Write both files into `run_dir` when `slice_duration_s` is set; nothing otherwise.
    Raises OSError on write failure."""
    if slice_duration_s is None:
        return
    slices = compute_time_slices(records, slice_duration_s)
    document = {"slice_duration_s": slice_duration_s, "slices": slices}
    write_bytes_atomically(run_dir / SLICES_JSON_FILE, orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    write_bytes_atomically(run_dir / SLICES_CSV_FILE, time_slices_csv_text(slices).encode("utf-8"))


def time_slices_csv_text(slices: Sequence[TimeSlice]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SLICE_FIELDS)
    for window in slices:
        writer.writerow(["" if window[field] is None else window[field] for field in SLICE_FIELDS])
    return buffer.getvalue()
