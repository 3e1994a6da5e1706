"""What a `profile` option is: the `Option` metadata that config fields carry, the `--help`
sections, and the parsers of option values typed as text (sweeps, `name:value` pairs, goodput SLOs).

Each parser raises UsageError with one line naming the option. `config.py` names them in its
option metadata, so the command line, recipes and the REST service parse a value the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from aiperf_hpc.errors import UsageError

# The sections of `aiperf-hpc profile --help`, in order.
ENDPOINT = "Endpoint"
LOAD = "Load"
SCHEDULE = "Trace replay and cancellation"
INPUTS = "Inputs"
CONVERSATIONS = "Conversations"
OUTPUT = "Results and engine"
CLUSTER = "Slurm"
OPTION_GROUPS = (ENDPOINT, LOAD, SCHEDULE, INPUTS, CONVERSATIONS, OUTPUT, CLUSTER)


@dataclass(frozen=True)
class Option:
    """How a config field is given as a `profile` option: the one declaration of that option.

    `options.schema` builds the command line (and so recipes, `submit` and the REST service, which
    parse with it) from these. `names`: the spellings, first the canonical one (default:
    `--field-name`). `cli_type`: what is typed, where it is not the field's type; the option's
    default is then None, which leaves the field at its own default. `parse`: turns what was typed
    into the field's value (raises UsageError). `sweep`: a comma-separated list of numbers of this
    kind makes one run per value. `negative` and `env_var` are passed on to cyclopts.
    """

    group: str
    help: str = ""
    names: tuple[str, ...] = ()
    cli_type: Any = None
    parse: Callable[[Any], Any] | None = None
    sweep: type[int] | type[float] | None = None
    negative: str | tuple[str, ...] | None = None
    env_var: str | None = None


Bound = Literal["ceiling", "floor"]

# Per-request metric -> how its SLO bounds it. Names are those of `core.metrics.METRIC_UNITS`.
GOODPUT_METRICS: dict[str, Bound] = {
    "time_to_first_token": "ceiling",
    "time_to_second_token": "ceiling",
    "inter_token_latency": "ceiling",
    "request_latency": "ceiling",
    "time_to_first_token_from_intended": "ceiling",
    "request_latency_from_intended": "ceiling",
    "output_token_throughput_per_user": "floor",
}


def parse_goodput_spec(spec: str) -> dict[str, float]:
    """Parse a `--goodput` spec into `{metric name: SLO}`, in the order given.

    Pairs are separated by whitespace (commas are accepted too). Raises UsageError, with one line
    naming the bad part, for an empty spec, a pair that is not `name:value`, an unknown metric, a
    value that is not a finite number > 0, or a metric named twice.
    """
    parts = spec.replace(",", " ").split()
    if not parts:
        raise UsageError("--goodput is empty: expected pairs like 'time_to_first_token:200 request_latency:3000'")
    slos: dict[str, float] = {}
    for part in parts:
        name, sep, text = part.partition(":")
        if not sep or not name or not text:
            raise UsageError(f"--goodput: {part!r} is not name:value (e.g. time_to_first_token:200)")
        if name not in GOODPUT_METRICS:
            raise UsageError(f"--goodput: unknown metric {name!r} in {part!r}; known: {', '.join(GOODPUT_METRICS)}")
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--goodput: {part!r} has a value that is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"--goodput: {part!r} needs a value > 0")
        if name in slos:
            raise UsageError(f"--goodput: {name!r} is given twice")
        slos[name] = value
    return slos


def parse_sweep(text: str, option: str, kind: type[int] | type[float]) -> list[Any]:
    """`"1,4,16"` -> `[1, 4, 16]`: one value, or a comma-separated list of positive numbers (a sweep)."""
    values = []
    for part in text.split(","):
        try:
            value = kind(part.strip())
        except ValueError:
            raise UsageError(f"{option} expects a number or a comma-separated list, got {text!r}") from None
        if value <= 0:
            raise UsageError(f"{option} values must be positive, got {part.strip()}")
        values.append(value)
    return values


def parse_pairs(items: list[str], option: str, *, json_values: bool) -> dict[str, Any]:
    """`["a:1", "b:x"]` -> `{"a": 1, "b": "x"}`; with `json_values` a value is parsed as JSON when it is JSON."""
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects 'name:value', got {item!r}")
        value = value.strip()
        if json_values:
            try:
                pairs[key.strip()] = orjson.loads(value)
            except orjson.JSONDecodeError:
                pairs[key.strip()] = value
        else:
            pairs[key.strip()] = value
    return pairs


def parse_headers(items: list[str]) -> dict[str, Any]:
    """`--header Name:Value` (repeat)."""
    return parse_pairs(items, "--header", json_values=False)


def parse_extra_inputs(items: list[str]) -> dict[str, Any]:
    """`--extra-inputs key:value` (repeat); the value is JSON when it parses as JSON."""
    return parse_pairs(items, "--extra-inputs", json_values=True)
