"""`profile_export.json`: the run's metrics and the caller's metadata in one JSON document.

Layout::

    {
      "metadata": {...},                      # as given: config, versions, seed, status ...
      "run": {"request_count": ..., ...,      # RunMetrics.run_figures(), None as null, then
              "output_tokens_source": {"usage": 98, "tokenizer": 2},
              "goodput_slos": {"time_to_first_token": 200.0} or null},
      "metrics": {"time_to_first_token": {"unit": "ms", "avg": ..., ..., "p99": ..., "count": ...}},
      "errors_by_type": {"http_error:500": {"count": 2, "sample_message": "..."}},
      "by_node": {"node001": {"workers": 4, "request_count": ..., ...,   # NodeMetrics, null where
                              "clock_offset_bound_ms": ...}},            # not computable
      "server_metrics": {"http://host:8000/metrics": {...}}   # only when scraped: the summary of
    }                                                          # core.server_metrics, per URL
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from aiperf_hpc.core.metrics import RunMetrics
from aiperf_hpc.errors import RunError
from aiperf_hpc.results.atomic import write_bytes_atomically


def profile_export_document(
    metrics: RunMetrics, metadata: Mapping[str, Any], server_metrics: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON document as a dict (what `write_profile_export_json` writes)."""
    document = {
        "metadata": dict(metadata),
        "run": {
            **metrics.run_figures(),
            "output_tokens_source": metrics.output_tokens_source,
            "goodput_slos": metrics.goodput_slos,
        },
        "metrics": {name: stats.model_dump() for name, stats in metrics.metrics.items()},
        "errors_by_type": {key: summary.model_dump() for key, summary in metrics.errors_by_type.items()},
        "by_node": {node: figures.model_dump() for node, figures in metrics.by_node.items()},
    }
    if server_metrics:
        document["server_metrics"] = dict(server_metrics)
    return document


def write_profile_export_json(
    path: Path, metrics: RunMetrics, metadata: Mapping[str, Any], *, server_metrics: Mapping[str, Any] | None = None
) -> None:
    """Write `profile_export.json` to `path`, replacing it atomically.

    Metadata values orjson cannot encode natively are written as: pydantic models through
    `model_dump(mode="json")`, anything else (Path ...) as `str(value)`. Raises OSError on write failure.
    """
    document = profile_export_document(metrics, metadata, server_metrics)
    data = orjson.dumps(document, default=_encode_other, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    write_bytes_atomically(path, data + b"\n")


def _encode_other(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`. Raises RunError when it cannot be read or is not a JSON object."""
    try:
        value = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RunError(f"{path} does not hold a JSON object")
    return value
