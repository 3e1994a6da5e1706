"""How far a run is: requests done, from its live Prometheus counters or from `records.jsonl`.

`records.jsonl` gets one line per record as the records service receives it (warmup included), so
its line count is the progress of any run, local or on Slurm (on a shared file system). Counting
is incremental: each call reads only the bytes appended since the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from aiperf_hpc.artifacts import RECORDS_FILE

# The run's counter of requests done (every outcome, summed over its labels: node, ...).
PROGRESS_COUNTER = "aiperf_requests"

_CHUNK_BYTES = 1 << 20


@dataclass
class _Counted:
    offset: int = 0
    lines: int = 0


class RecordLineCounter:
    """Lines of each run's `records.jsonl`, counted incrementally; one instance per service."""

    def __init__(self) -> None:
        self._counted: dict[Path, _Counted] = {}

    def count(self, run_dir: Path) -> int | None:
        """Complete lines in `run_dir/records.jsonl`; None when the file does not exist (yet)."""
        path = run_dir / RECORDS_FILE
        try:
            size = path.stat().st_size
        except OSError:
            return None
        counted = self._counted.setdefault(path, _Counted())
        if size < counted.offset:  # the run started over (the profile clears its artifact dir)
            counted.offset = counted.lines = 0
        if size > counted.offset:
            try:
                with path.open("rb") as file:
                    file.seek(counted.offset)
                    while chunk := file.read(_CHUNK_BYTES):
                        counted.lines += chunk.count(b"\n")
                        counted.offset += len(chunk)
            except OSError:
                return counted.lines
        return counted.lines

    def forget(self, run_dir: Path) -> None:
        self._counted.pop(run_dir / RECORDS_FILE, None)


def requests_done_from_metrics(text: str) -> int | None:
    """The sum of the `PROGRESS_COUNTER` samples in Prometheus text; None when it is absent or unreadable."""
    sample_name = f"{PROGRESS_COUNTER}_total"
    try:
        values = [
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == sample_name
        ]
    except ValueError:
        return None
    return int(sum(values)) if values else None
