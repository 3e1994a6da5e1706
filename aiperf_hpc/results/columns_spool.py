"""The records of a run as columns, spooled to disk while the run goes, for the end of the run.

Decoding `records.jsonl` back is most of the post-processing of a large run (about 5 µs a line,
a million lines for a million requests). The records service already holds every record as a dict
when it writes its line, so it also turns the records into columns (`core.record_columns`) as they
arrive, `FRAME_RECORDS` at a time, and appends each frame to a spool file. When the run ends the
spool is read back with `numpy.load` alone: no JSON is decoded, and the records' columns are not
held in memory during the run, however long it is.

`records.jsonl` stays the one source of truth: the spool is a private file of the records service
that lives only for one run (it is deleted when the service closes) and is read only by the service
that wrote it, in full, at the end. After a crash `aiperf-hpc recompute` reads `records.jsonl`.

A frame is `numpy.save` arrays one after the other: the frame's strings as JSON bytes (node and
worker names, errors, output token sources), then the numeric columns in `_ARRAYS` order. Nothing is
pickled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from aiperf_hpc.core.record_columns import RecordColumns, concatenate, record_columns

log = logging.getLogger(__name__)

# Records turned into columns at once: the dicts waiting take a few MB, and a frame's fixed cost
# (a dozen small arrays) is spread over enough records to be nothing.
FRAME_RECORDS = 4096

_ARRAYS = (
    "outcome",
    "started_wall_ns",
    "scheduled_wall_ns",
    "has_schedule",
    "latency_ns",
    "input_tokens",
    "output_tokens",
    "clock_offset_bound_ns",
    "response_count",
    "response_times_ns",
    "node_code",
    "worker_code",
)


class ColumnsSpool:
    """Appends records (dicts shaped like `RequestRecord.model_dump(mode="json")`) as column frames.

    A record the columns cannot take (which a validated `RequestRecord` never is) stops the spool:
    it is logged, `read` returns None from then on, and the caller reads `records.jsonl` instead.
    Raises OSError when the spool file cannot be created.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[bytes] | None = path.open("wb")
        self._pending: list[Mapping[str, Any]] = []
        self._broken = False

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        if self._broken:
            return
        self._pending.extend(records)
        if len(self._pending) >= FRAME_RECORDS:
            self.flush()

    def read(self) -> RecordColumns | None:
        """Every profiling record added, as columns; None when the spool broke. Ends the writing."""
        self.flush()
        if self._broken or self._file is None:
            return None
        self._file.close()
        self._file = None
        try:
            return read_spool(self._path)
        except (OSError, ValueError, EOFError) as exc:
            log.warning("the columns spool cannot be read back, reading records.jsonl instead: %s", exc)
            return None

    def close(self) -> None:
        """Close and delete the spool file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._path.unlink(missing_ok=True)

    def flush(self) -> None:
        """Write the records waiting for a full frame as a frame of their own."""
        if self._broken or not self._pending or self._file is None:
            return
        try:
            columns = record_columns(self._pending)
            _write_frame(self._file, columns)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            log.warning("stopped the columns spool, records.jsonl will be read at the end: %r", exc)
            self._broken = True
        self._pending = []


def read_spool(path: Path) -> RecordColumns:
    """The columns of every frame of `path`, in order. Raises OSError, and ValueError or EOFError when
    a frame is torn or not what `_write_frame` writes."""
    parts = []
    size = path.stat().st_size
    with path.open("rb") as file:
        while file.tell() < size:
            parts.append(_read_frame(file))
    return concatenate(parts)


def _write_frame(file: IO[bytes], columns: RecordColumns) -> None:
    strings = {
        "node_names": columns.node_names,
        "worker_names": columns.worker_names,
        "errors": columns.errors,
        "output_tokens_source": columns.output_tokens_source,
    }
    np.save(file, np.frombuffer(orjson.dumps(strings), dtype=np.uint8), allow_pickle=False)
    for name in _ARRAYS:
        np.save(file, getattr(columns, name), allow_pickle=False)


def _read_frame(file: IO[bytes]) -> RecordColumns:
    strings = orjson.loads(np.load(file, allow_pickle=False).tobytes())
    arrays = {name: np.load(file, allow_pickle=False) for name in _ARRAYS}
    return RecordColumns(
        **arrays,
        node_names=strings["node_names"],
        worker_names=strings["worker_names"],
        errors=[(key, message) for key, message in strings["errors"]],
        output_tokens_source=strings["output_tokens_source"],
    )
