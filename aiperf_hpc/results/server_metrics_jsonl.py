"""Reading `server_metrics.jsonl` back: one scrape of a server's `/metrics` per line, in the shape
`core.server_metrics` describes. The records manager appends a line per scrape as it arrives, so a
crash can leave a torn last line: that line, and any other that is not a JSON object, is skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def read_server_metrics_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every decodable line of `path`; an empty list when the file does not exist.
    Raises OSError when it exists but cannot be read."""
    if not path.is_file():
        return []
    lines: list[dict[str, Any]] = []
    for raw in path.read_bytes().split(b"\n"):
        if not raw.strip():
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines
