"""Replace a file in one step, so a crash mid-export never leaves a half-written result file."""

from __future__ import annotations

import os
from pathlib import Path


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a sibling temporary file, then rename it over `path`.

    Raises OSError when the directory is not writable; the temporary file is removed then.
    """
    tmp_path = path.with_name(f".{path.name}.tmp")
    try:
        tmp_path.write_bytes(data)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
