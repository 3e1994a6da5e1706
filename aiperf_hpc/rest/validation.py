"""A client-group body turned into `profile` arguments, validated exactly as the command line does.

The options go through `options.py` (the CLI's own parser and pydantic models) and, for slurm,
through `core.sbatch.check_submit`, so the API refuses what the CLI refuses, with the same message.
Each refusal becomes a `BodyError` whose `loc` names the field of the body, found from the option
the message names (`--concurrency values must be positive` -> ["body", "options", "concurrency"]).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiperf_hpc.core.sbatch import SubmitOptions, check_submit
from aiperf_hpc.errors import UsageError
from aiperf_hpc.options import options_to_argv, parse_profile_argv
from aiperf_hpc.rest.models import ClientGroupCreate

# Options the service sets itself, and what to do instead.
RESERVED_OPTIONS = {
    "artifact-dir": "the service writes each run to STATE_DIR/runs/ID",
    "launcher": "give 'launcher' next to 'options'",
    "nodes": "give it in 'slurm'",
    "workers-per-node": "give it in 'slurm'",
    "metrics-port": "the service picks the live-metrics port",
    "ui": "runs of the service have no console view",
}
_SECRET_OPTIONS = frozenset({"api-key"})
_MASKED_VALUE_OPTIONS = frozenset({"header"})
MASK = "***"

_OPTION_IN_MESSAGE = re.compile(r"--([a-z0-9][a-z0-9-]*)")
_SLURM_FIELDS = {"nodes", "workers-per-node", "time", "partition", "account"}


class BodyError(Exception):
    """A body the API refuses: `loc` is the path to the field, `msg` says why (one line)."""

    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


@dataclass(frozen=True)
class Plan:
    """What running a valid body takes. `argv` holds the secrets; `shown_options` has them masked."""

    argv: list[str]
    shown_options: dict[str, Any]
    requests_expected: int | None
    submit: SubmitOptions | None


def plan_client_group(body: ClientGroupCreate, *, run_dir: Path, job_name: str) -> Plan:
    """Validate `body` for a run in `run_dir` (absolute); BodyError for the first problem found."""
    names = {_option_name(key): key for key in body.options if isinstance(key, str)}
    for name, key in names.items():
        if name in RESERVED_OPTIONS:
            raise BodyError(["body", "options", key], f"--{name} is set by the service: {RESERVED_OPTIONS[name]}")
    try:
        argv = options_to_argv(body.options)
        runs = parse_profile_argv(argv)
    except UsageError as exc:
        raise BodyError(_options_loc(str(exc), names), str(exc)) from None
    if len(runs) > 1:
        swept = next((name for name in ("concurrency", "request-rate") if name in names), None)
        loc: list[str | int] = ["body", "options", *([names[swept]] if swept else [])]
        raise BodyError(loc, "a client group is one run: create one client group per sweep point")
    config = runs[0][1]
    profiling = config.load.profiling_request_count
    expected = None if profiling is None or config.dataset_pass else profiling + config.load.warmup_request_count
    submit = None
    if body.slurm is not None:
        submit = SubmitOptions(
            nodes=body.slurm.nodes,
            workers_per_node=body.slurm.workers_per_node,
            time=body.slurm.time,
            partition=body.slurm.partition,
            account=body.slurm.account,
            job_name=job_name,
            artifact_dir=run_dir,
        )
        try:
            check_submit(submit, argv)
        except UsageError as exc:
            raise BodyError(_slurm_loc(str(exc), names), str(exc)) from None
    return Plan(argv=argv, shown_options=mask_options(body.options), requests_expected=expected, submit=submit)


def mask_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` with the API key and header values replaced by `***` (header names stay)."""
    shown: dict[str, Any] = {}
    for key, value in options.items():
        name = _option_name(key)
        if value is None:
            shown[key] = value
        elif name in _SECRET_OPTIONS:
            shown[key] = MASK
        elif name in _MASKED_VALUE_OPTIONS:
            shown[key] = _mask_headers(value)
        else:
            shown[key] = value
    return shown


def _mask_headers(value: Any) -> Any:
    if isinstance(value, dict):
        return dict.fromkeys(value, MASK)
    items = value if isinstance(value, list) else [value]
    masked = [f"{item.split(':', 1)[0]}:{MASK}" if isinstance(item, str) else MASK for item in items]
    return masked if isinstance(value, list) else masked[0]


def _option_name(key: str) -> str:
    return key.strip("-").replace("_", "-")


def _options_loc(message: str, names: Mapping[str, str]) -> list[str | int]:
    match = _OPTION_IN_MESSAGE.search(message)
    if match is None:
        return ["body", "options"]
    name = match.group(1)
    if name.startswith("no-") and name not in names:
        name = name[3:]
    return ["body", "options", names.get(name, name)]


def _slurm_loc(message: str, names: Mapping[str, str]) -> list[str | int]:
    match = _OPTION_IN_MESSAGE.search(message)
    if match is None:
        return ["body", "slurm"]
    name = match.group(1)
    if name in _SLURM_FIELDS:
        return ["body", "slurm", name.replace("-", "_")]
    return ["body", "options", names.get(name, name)]
