"""The profiling records of a run as columns: what `core.metrics` reads of each record, in numpy arrays.

Records come as mappings shaped like `RequestRecord.model_dump(mode="json")` (lines of
`records.jsonl`, or dumped models), from any iterable, so a file is turned into columns while it
is read and no list of a million dicts is ever held. One `operator.itemgetter` call per record
pulls every field read here into a row; `CHUNK_RECORDS` rows at a time, `zip` transposes them into
columns and numpy converts each column. That, and one small function call, is all the Python run
per record; everything after it is vectorised.

Conventions: a missing integer (latency, token counts) is `MISSING` (-1), a missing clock offset
bound is NaN, a missing node or worker id is "". Node and worker ids are integer codes into the
names in order of first appearance. Warmup records are left out.
"""

from __future__ import annotations

import gc
import operator
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, compress, islice, repeat
from operator import itemgetter
from typing import Any, cast

import numpy as np
import numpy.typing as npt

# The outcome of a record, as in `RecordColumns.outcome`.
OUTCOME_SUCCESS = 0
OUTCOME_ERROR = 1
OUTCOME_CANCELLED = 2
OUTCOME_LOST = 3

CHUNK_RECORDS = 65_536
MISSING = -1

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# The fields read, in the order of a row.
FIELDS: tuple[str, ...] = (
    "phase",
    "error_type",
    "status_code",
    "error_message",
    "node",
    "worker_id",
    "scheduled_wall_ns",
    "started_wall_ns",
    "latency_ns",
    "input_tokens",
    "output_tokens",
    "output_tokens_source",
    "clock_offset_bound_ns",
    "response_times_ns",
)
_FIELDS_OF = itemgetter(*FIELDS)
_OUTCOME_OF: dict[str | None, int] = {None: OUTCOME_SUCCESS, "cancelled": OUTCOME_CANCELLED, "lost": OUTCOME_LOST}


def error_key(error_type: str, status_code: int | None) -> str:
    """The `errors_by_type` key: `"http_error:500"` for HTTP errors with a status, else the type."""
    if error_type == "http_error" and status_code is not None:
        return f"{error_type}:{status_code}"
    return error_type


@dataclass(frozen=True)
class RecordColumns:
    """One entry per profiling record, in record order, unless said otherwise.

    - `outcome`: an `OUTCOME_*` code (`error_type` None: success; "cancelled", "lost"; else error).
    - `started_wall_ns` (`MISSING` for a lost record without one); `scheduled_wall_ns` where
      `has_schedule`, else `MISSING`.
    - `latency_ns`, `input_tokens`, `output_tokens`: `MISSING` where absent.
    - `clock_offset_bound_ns`: NaN where absent.
    - `response_count`: a success's number of response times (0 for every other outcome), and
      `response_times_ns` all successes' response times concatenated in record order.
    - `node_code` / `worker_code` index `node_names` / `worker_names`.
    - `errors`: (`error_key`, error message) of each error record, in record order.
    - `output_tokens_source`: successes per source; successes without one are not counted.
    """

    outcome: IntArray
    started_wall_ns: IntArray
    scheduled_wall_ns: IntArray
    has_schedule: BoolArray
    latency_ns: IntArray
    input_tokens: IntArray
    output_tokens: IntArray
    clock_offset_bound_ns: FloatArray
    response_count: IntArray
    response_times_ns: IntArray
    node_code: IntArray
    node_names: list[str]
    worker_code: IntArray
    worker_names: list[str]
    errors: list[tuple[str, str | None]]
    output_tokens_source: dict[str, int]

    @property
    def request_count(self) -> int:
        return int(self.outcome.size)


def record_columns(records: Iterable[Mapping[str, Any]]) -> RecordColumns:
    """The profiling records of `records` as columns (consumed once, `CHUNK_RECORDS` at a time).

    Raises KeyError when a record lacks `phase`, or a profiling record other than a lost one lacks
    `started_wall_ns`; TypeError or ValueError when a field has a value of the wrong type.
    """
    chunks: list[RecordColumns] = []
    # Each record becomes its row as soon as it arrives, while it is still in the CPU's cache, and
    # is dropped: pulling fields out of 65,536 dicts column by column would miss the cache each time.
    rows = map(_row, records)
    with _cyclic_gc_paused():
        while batch := list(islice(rows, CHUNK_RECORDS)):
            chunks.append(_columns_of_rows(batch))
    return concatenate(chunks)


def _row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """The fields of `FIELDS`, None where `record` lacks one."""
    try:
        return _FIELDS_OF(record)  # type: ignore[no-any-return]
    except KeyError:  # a record without some field (files of older versions)
        return tuple(map(record.get, FIELDS))


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: while a chunk of rows is held, every allocation of a
    record's dict and lists would make it traverse the chunk's tens of thousands of tuples again,
    which more than doubles the time of a read. Rows hold no reference cycles, so reference
    counting frees everything as before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _columns_of_rows(rows: list[tuple[Any, ...]]) -> RecordColumns:
    nodes, workers = _Codes(), _Codes()
    phase = [row[0] for row in rows]
    if None in phase:
        raise KeyError("phase")
    profiling = [value == "profiling" for value in phase]
    if not all(profiling):
        rows = list(compress(rows, profiling))
    (
        _,
        error_type,
        status_code,
        error_message,
        node,
        worker_id,
        scheduled_wall_ns,
        started_wall_ns,
        latency_ns,
        input_tokens,
        output_tokens,
        source,
        bound_ns,
        times_ns,
    ) = zip(*rows, strict=True) if rows else (() for _ in FIELDS)
    size = len(rows)
    del rows
    outcome = np.fromiter(map(_OUTCOME_OF.get, error_type, repeat(OUTCOME_ERROR)), dtype=np.int64, count=size)
    started, no_start = _ints(started_wall_ns)
    if (no_start & (outcome != OUTCOME_LOST)).any():
        raise KeyError("started_wall_ns")
    scheduled, no_schedule = _ints(scheduled_wall_ns)
    success = outcome == OUTCOME_SUCCESS
    is_success = success.tolist()
    if None in times_ns:
        times_ns = tuple(times or () for times in times_ns)
    response_count = np.fromiter(map(len, times_ns), dtype=np.int64, count=size)
    response_count[~success] = 0
    error_rows = np.flatnonzero(outcome == OUTCOME_ERROR).tolist()
    sources = Counter(compress(source, is_success))
    sources.pop(None, None)
    return RecordColumns(
        outcome=outcome,
        started_wall_ns=started,
        scheduled_wall_ns=scheduled,
        has_schedule=~no_schedule,
        latency_ns=_ints(latency_ns)[0],
        input_tokens=_ints(input_tokens)[0],
        output_tokens=_ints(output_tokens)[0],
        # None becomes NaN; bounds are far below 2**53 ns.
        clock_offset_bound_ns=np.array(bound_ns, dtype=np.float64),
        response_count=response_count,
        response_times_ns=np.fromiter(chain.from_iterable(compress(times_ns, is_success)), dtype=np.int64),
        node_code=nodes.codes(node),
        node_names=list(nodes.code_of),
        worker_code=workers.codes(worker_id),
        worker_names=list(workers.code_of),
        errors=[(error_key(error_type[row], status_code[row]), error_message[row]) for row in error_rows],
        output_tokens_source=dict(sources),
    )


def _ints(values: Sequence[Any]) -> tuple[IntArray, BoolArray]:
    """`values` as int64 with None as `MISSING`, and where they were None."""
    missing_count = values.count(None)
    if missing_count == 0:
        return np.array(values, dtype=np.int64), np.zeros(len(values), dtype=np.bool_)
    if missing_count == len(values):  # e.g. `scheduled_wall_ns` of a closed-loop run
        return np.full(len(values), MISSING, dtype=np.int64), np.ones(len(values), dtype=np.bool_)
    missing = np.fromiter(map(operator.is_, values, repeat(None)), dtype=np.bool_, count=len(values))
    known = np.array([MISSING if value is None else value for value in values], dtype=np.int64)
    return known, missing


class _Codes:
    """Integer codes of labels in order of first appearance."""

    def __init__(self) -> None:
        # A label seen for the first time gets the number of labels seen before it.
        self.code_of: defaultdict[str, int] = defaultdict()
        self.code_of.default_factory = self.code_of.__len__

    def codes(self, labels: Sequence[str | None]) -> IntArray:
        named = ["" if label is None else label for label in labels] if None in labels else cast(Sequence[str], labels)
        return np.fromiter(map(self.code_of.__getitem__, named), dtype=np.int64, count=len(named))

    def recode(self, codes: IntArray, names: Sequence[str]) -> IntArray:
        """`codes` into `names`, as codes of this table."""
        return self.codes(list(names))[codes] if names else codes


def concatenate(parts: Sequence[RecordColumns]) -> RecordColumns:
    """The columns of `parts` one after the other, as if built from their records in that order;
    node and worker codes are renumbered by name."""
    nodes, workers = _Codes(), _Codes()
    node_codes = [nodes.recode(part.node_code, part.node_names) for part in parts]
    worker_codes = [workers.recode(part.worker_code, part.worker_names) for part in parts]

    def joined(arrays: Sequence[npt.NDArray[Any]], dtype: type[Any]) -> Any:
        return np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)

    def column(name: str, dtype: type[Any]) -> Any:
        return joined([getattr(part, name) for part in parts], dtype)

    sources: Counter[str] = Counter()
    for part in parts:
        sources.update(part.output_tokens_source)
    return RecordColumns(
        outcome=column("outcome", np.int64),
        started_wall_ns=column("started_wall_ns", np.int64),
        scheduled_wall_ns=column("scheduled_wall_ns", np.int64),
        has_schedule=column("has_schedule", np.bool_),
        latency_ns=column("latency_ns", np.int64),
        input_tokens=column("input_tokens", np.int64),
        output_tokens=column("output_tokens", np.int64),
        clock_offset_bound_ns=column("clock_offset_bound_ns", np.float64),
        response_count=column("response_count", np.int64),
        response_times_ns=column("response_times_ns", np.int64),
        node_code=joined(node_codes, np.int64),
        node_names=list(nodes.code_of),
        worker_code=joined(worker_codes, np.int64),
        worker_names=list(workers.code_of),
        errors=[error for part in parts for error in part.errors],
        output_tokens_source=dict(sources),
    )
