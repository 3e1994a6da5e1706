"""Reading `records.jsonl` back: one `RequestRecord.model_dump(mode="json")` object per line.

The records service appends lines as records arrive, so a crash mid-write leaves a torn last line.
That line, and any other line that is not a JSON object, is skipped and counted rather than
failing the whole read: the rest of the run's results stay recoverable, and the count says what
was lost. Lines are returned as plain dicts, unvalidated, for `core.metrics.compute_metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True)
class RecordsRead:
    """The records of one file, and the lines that could not be decoded.

    `first_skipped_line` is the 1-based number of the first skipped line (None when none was), so
    a caller can tell a torn tail (the last line) from corruption in the middle.
    """

    records: list[dict[str, Any]]
    skipped_lines: int
    first_skipped_line: int | None


def read_records_jsonl(path: Path) -> RecordsRead:
    """Read every record of `path`. Blank lines are ignored, undecodable ones skipped and counted.

    Raises OSError when the file cannot be read.
    """
    records: list[dict[str, Any]] = []
    skipped_lines = 0
    first_skipped_line: int | None = None
    loads = orjson.loads
    for line_number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = loads(line)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            records.append(value)
            continue
        skipped_lines += 1
        if first_skipped_line is None:
            first_skipped_line = line_number
    return RecordsRead(records=records, skipped_lines=skipped_lines, first_skipped_line=first_skipped_line)
