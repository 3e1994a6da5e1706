"""Client groups kept in SQLite (`STATE_DIR/service.sqlite3`), so the list survives a restart.

One row per client group. Secrets never reach the file: `options` is stored masked, and the
arguments with the API key exist only in the memory of the service that started the run.
Every call runs on the event loop's thread; each is one short statement on a small local file.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from aiperf_hpc.artifacts import REST_DB_FILE
from aiperf_hpc.errors import UsageError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS client_groups (
    id TEXT PRIMARY KEY,
    name TEXT,
    launcher TEXT NOT NULL,
    status TEXT NOT NULL,
    options TEXT NOT NULL,            -- JSON, secrets masked
    slurm TEXT,                       -- JSON SlurmResources, or NULL
    artifact_dir TEXT NOT NULL,
    created_wall_ns INTEGER NOT NULL,
    finished_wall_ns INTEGER,
    requests_expected INTEGER,
    pid INTEGER,                      -- local: the profile process
    pid_start_ticks INTEGER,          -- local: its start time (/proc/PID/stat field 22), against pid reuse
    metrics_port INTEGER,             -- local: its live /metrics, when it has one
    slurm_job_id TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    error TEXT,
    summary TEXT                      -- JSON, once the run has ended
)
"""

_JSON_COLUMNS = frozenset({"options", "slurm", "summary"})


@dataclass(frozen=True)
class GroupRow:
    """One stored client group; see the schema above for the meaning of each column."""

    id: str
    name: str | None
    launcher: str
    status: str
    options: dict[str, Any]
    slurm: dict[str, Any] | None
    artifact_dir: str
    created_wall_ns: int
    finished_wall_ns: int | None = None
    requests_expected: int | None = None
    pid: int | None = None
    pid_start_ticks: int | None = None
    metrics_port: int | None = None
    slurm_job_id: str | None = None
    cancel_requested: bool = False
    exit_code: int | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None


_COLUMNS = tuple(field.name for field in dataclasses.fields(GroupRow))


class Store:
    """The client-group table. Raises UsageError when the database cannot be opened."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / REST_DB_FILE
        try:
            self._db = sqlite3.connect(path, isolation_level=None)  # autocommit: every write is durable at once
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise UsageError(f"{path} has schema version {version}; this aiperf-hpc reads {SCHEMA_VERSION}")
            self._db.execute(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise UsageError(f"cannot use {path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def insert(self, row: GroupRow) -> None:
        values = [_encode(name, getattr(row, name)) for name in _COLUMNS]
        placeholders = ", ".join("?" for _ in _COLUMNS)
        self._db.execute(f"INSERT INTO client_groups ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values)

    def update(self, group_id: str, **changes: Any) -> GroupRow:
        """Set the given columns of one row and return the row as stored; KeyError for an unknown id."""
        unknown = set(changes) - set(_COLUMNS) - {"id"}
        if unknown or "id" in changes:
            raise ValueError(f"not updatable columns: {sorted(unknown | ({'id'} & set(changes)))}")
        if changes:
            assignments = ", ".join(f"{name} = ?" for name in changes)
            values = [_encode(name, value) for name, value in changes.items()]
            self._db.execute(f"UPDATE client_groups SET {assignments} WHERE id = ?", [*values, group_id])
        row = self.get(group_id)
        if row is None:
            raise KeyError(group_id)
        return row

    def get(self, group_id: str) -> GroupRow | None:
        found = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM client_groups WHERE id = ?", [group_id])
        values = found.fetchone()
        return None if values is None else _decode(values)

    def all(self) -> list[GroupRow]:
        """Every client group, oldest first."""
        found = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM client_groups ORDER BY created_wall_ns, id")
        return [_decode(values) for values in found.fetchall()]


def _encode(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS:
        return None if value is None else orjson.dumps(value).decode()
    if isinstance(value, bool):
        return int(value)
    return value


def _decode(values: tuple[Any, ...]) -> GroupRow:
    fields: dict[str, Any] = {}
    for name, value in zip(_COLUMNS, values, strict=True):
        if name in _JSON_COLUMNS and value is not None:
            value = orjson.loads(value)
        elif name == "cancel_requested":
            value = bool(value)
        fields[name] = value
    return GroupRow(**fields)
