"""`inputs.json`: the exact request body of every dataset entry, for inspection and replay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from aiperf_hpc.config import EndpointType
from aiperf_hpc.endpoints.payload import build_payload
from aiperf_hpc.protocol.messages import DatasetEntry


def write_inputs_json(
    path: Path,
    entries: Sequence[DatasetEntry],
    *,
    endpoint_type: EndpointType,
    model: str,
    streaming: bool,
    extra_inputs: Mapping[str, Any],
) -> None:
    """Write `{"data": [{"entry_index": i, "payload": {...}}, ...]}` to `path` (indented JSON).

    Payloads come from `build_payload`, the function workers send with, so the file holds what goes on
    the wire. Replaces an existing file; raises OSError when `path` cannot be written.
    """
    document = {
        "data": [
            {
                "entry_index": entry.index,
                "payload": build_payload(endpoint_type, model, entry.prompt, entry.max_tokens, streaming, extra_inputs),
            }
            for entry in entries
        ]
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
