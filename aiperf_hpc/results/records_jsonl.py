"""Reading `records.jsonl` back: one `RequestRecord.model_dump(mode="json")` object per line.

The records service appends lines as records arrive, so a crash mid-write leaves a torn last line.
That line, and any other line that is not a JSON object, is skipped and counted rather than
failing the whole read: the rest of the run's results stay recoverable, and the count says what
was lost. `read_record_columns` turns the lines into `core.record_columns.RecordColumns` while it
reads them, for the metrics (a million records never exist as a list of dicts);
`read_records_jsonl` returns the lines as plain dicts, unvalidated, for the report's series.

Decoding JSON is most of the time of a read (a few microseconds a line, a million lines for a run
of a million requests), so a large file is read in parts, one process per CPU: the file is cut at
line boundaries, this process reads the first part while child processes (`python -c`, importing
only this module, numpy and orjson) read the others and send their columns back pickled on stdout,
and the parts' columns are joined in file order. Starting a child costs about half a second, so a
part is at least `PART_MIN_BYTES`: a smaller file is read here alone.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

import orjson

from aiperf_hpc.core.record_columns import RecordColumns, concatenate, record_columns

PART_MIN_BYTES = 64 * 2**20
MAX_PARTS = 8
PART_TIMEOUT_S = 600.0  # a part of a few hundred MB takes seconds
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # children import the same code as this process
_PART_CODE = "from aiperf_hpc.results.records_jsonl import part_main; part_main()"

# A part as read: its columns, its number of lines, the lines skipped, the first skipped (within it).
_Part = tuple[RecordColumns, int, int, int | None]


@dataclass(frozen=True)
class RecordsRead:
    """The records of one file, and the lines that could not be decoded.

    `first_skipped_line` is the 1-based number of the first skipped line (None when none was), so
    a caller can tell a torn tail (the last line) from corruption in the middle.
    """

    records: list[dict[str, Any]]
    skipped_lines: int
    first_skipped_line: int | None


@dataclass(frozen=True)
class ColumnsRead:
    """The profiling records of one file as columns, and the lines skipped (as in `RecordsRead`)."""

    columns: RecordColumns
    skipped_lines: int
    first_skipped_line: int | None


def read_records_jsonl(path: Path) -> RecordsRead:
    """Read every record of `path`. Blank lines are ignored, undecodable ones skipped and counted.

    Raises OSError when the file cannot be read.
    """
    lines = _RecordLines(path)
    records = list(lines)
    return RecordsRead(records=records, skipped_lines=lines.skipped_lines, first_skipped_line=lines.first_skipped_line)


def read_record_columns(path: Path, max_parts: int | None = None) -> ColumnsRead:
    """Read `path` straight into columns; lines as `read_records_jsonl` treats them. Read in up to
    `max_parts` parts at once (default: one per available CPU, at most `MAX_PARTS`).

    Raises OSError when the file cannot be read or a child failed, TimeoutError when a part takes
    more than `PART_TIMEOUT_S`, and what `record_columns` raises for a record without a required
    field or with a value of the wrong type.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    size = path.stat().st_size
    parts = max(1, min(max_parts or min(cpus, MAX_PARTS), size // PART_MIN_BYTES))
    ranges = _line_ranges(path, size, parts)
    children = [_start_part(path, start, end) for start, end in ranges[1:]]
    try:
        first = _read_part(path, *ranges[0])
        return _columns_read([first, *(_part_of(child) for child in children)])
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def part_main() -> None:
    """A child's entry: argv is PATH START END (END empty: to the end); the part goes to stdout."""
    path, start, end = sys.argv[1:4]
    part = _read_part(Path(path), int(start), int(end) if end else None)
    sys.stdout.buffer.write(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))


def _read_part(path: Path, start: int, end: int | None) -> _Part:
    """The records of the lines in bytes [start, end) of `path` (end None: to the end of the file)."""
    lines = _RecordLines(path, start, end)
    columns = record_columns(lines)
    return columns, lines.lines, lines.skipped_lines, lines.first_skipped_line


def _start_part(path: Path, start: int, end: int | None) -> subprocess.Popen[bytes]:
    python_path = [str(_PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    argv = [sys.executable, "-c", _PART_CODE, str(path), str(start), "" if end is None else str(end)]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _part_of(child: subprocess.Popen[bytes]) -> _Part:
    """The part a child read. Raises TimeoutError past `PART_TIMEOUT_S`, OSError when it failed."""
    try:
        out, err = child.communicate(timeout=PART_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"reading a part of the records took more than {PART_TIMEOUT_S:g} s") from None
    if child.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {child.returncode}"]
        raise OSError(f"reading a part of the records failed: {last[0]}")
    part: _Part = pickle.loads(out)
    return part


def _columns_read(parts: list[_Part]) -> ColumnsRead:
    first_skipped_line = None
    lines_before = 0
    for _, lines, _, first_skipped in parts:
        if first_skipped_line is None and first_skipped is not None:
            first_skipped_line = lines_before + first_skipped
        lines_before += lines
    return ColumnsRead(
        columns=parts[0][0] if len(parts) == 1 else concatenate([part[0] for part in parts]),
        skipped_lines=sum(part[2] for part in parts),
        first_skipped_line=first_skipped_line,
    )


def _line_ranges(path: Path, size: int, parts: int) -> list[tuple[int, int | None]]:
    """`parts` byte ranges of about equal size covering `path`, each ending after a newline, the
    last at the end of the file (None); fewer when lines are longer than a part."""
    cuts = [0]
    with path.open("rb") as file:
        for k in range(1, parts):
            file.seek(max(size * k // parts, cuts[-1]))
            file.readline()  # to the end of the line the cut fell into
            cut = file.tell()
            if cut >= size:
                break
            if cut > cuts[-1]:
                cuts.append(cut)
    ranges: list[tuple[int, int | None]] = list(pairwise(cuts))
    return [*ranges, (cuts[-1], None)]


class _RecordLines:
    """The JSON objects of the lines in bytes [start, end) of a file (end None: to its end),
    counting the lines, and the non-blank lines that are not JSON objects, as it goes."""

    def __init__(self, path: Path, start: int = 0, end: int | None = None) -> None:
        self._path = path
        self._start = start
        self._end = end
        self.lines = 0
        self.skipped_lines = 0
        self.first_skipped_line: int | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        loads = orjson.loads
        with self._path.open("rb") as file:
            file.seek(self._start)
            lines = file if self._end is None else _lines_of_next(file, self._end - self._start)
            line_number = 0
            for line_number, line in enumerate(lines, start=1):
                try:
                    value = loads(line)
                except orjson.JSONDecodeError:
                    if not line.strip():
                        continue
                    value = None
                if type(value) is dict:
                    yield value
                    continue
                self.skipped_lines += 1
                if self.first_skipped_line is None:
                    self.first_skipped_line = line_number
            self.lines = line_number


def _lines_of_next(file: IO[bytes], length: int) -> Iterator[bytes]:
    """The lines in the next `length` bytes of `file` (`length` ends after a newline)."""
    for line in file:
        yield line
        length -= len(line)
        if length <= 0:
            return
