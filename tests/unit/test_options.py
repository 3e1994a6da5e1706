"""The option schema: every `profile` option comes from one config field, and lands in it."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from aiperf_hpc.config import RunConfig
from aiperf_hpc.errors import UsageError
from aiperf_hpc.options import (
    OPTION_BY_FIELD,
    PROFILE_OPTIONS,
    ProfileOption,
    describe_validation_error,
    parse_profile_argv,
    profile_signature,
)

# Config fields that are not options: set by the tool itself, never typed.
INTERNAL_FIELDS = {("service_start_timeout_s",)}


def _config_fields() -> set[tuple[str, ...]]:
    fields: set[tuple[str, ...]] = set()
    for name, info in RunConfig.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and hasattr(model, "model_fields"):
            fields.update((name, inner) for inner in model.model_fields)
        else:
            fields.add((name,))
    return fields


def test_every_config_field_is_an_option_or_internal() -> None:
    assert _config_fields() - set(OPTION_BY_FIELD) == INTERNAL_FIELDS


def test_option_spellings_are_unique() -> None:
    spellings = [name for spec in PROFILE_OPTIONS for name in (spec.option.names or (spec.name,))]
    assert len(spellings) == len(set(spellings))


def test_the_signature_has_one_keyword_per_option() -> None:
    parameters = profile_signature().parameters
    assert list(parameters) == [spec.parameter for spec in PROFILE_OPTIONS]
    assert parameters["endpoint__model"].default is parameters["endpoint__model"].empty


def _sample(spec: ProfileOption) -> tuple[list[str], Any]:
    """Arguments that set `spec` to a value other than its default, and the config value expected."""
    option = spec.option
    if option.sweep is not None:
        return [spec.name, "3"], option.sweep(3)
    if spec.field == "headers":
        return [spec.name, "X-A:1"], {"X-A": "1"}
    if spec.field == "extra_inputs":
        return [spec.name, "top_k:5"], {"top_k": 5}
    if spec.field == "goodput":
        return [spec.name, "request_latency:300"], {"request_latency": 300.0}
    if spec.field == "urls":
        return [spec.name, "http://127.0.0.1:9/metrics"], ["http://127.0.0.1:9/metrics"]
    if spec.field == "artifact_dir":
        return [spec.name, "some/dir"], Path("some/dir")
    if spec.field == "url":
        return [spec.name, "http://h:1"], "http://h:1"
    kind = spec.cli_type
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    if kind is bool:
        return [spec.name], True
    if typing.get_origin(kind) is typing.Literal:
        choices = get_args(kind)
        value = next(choice for choice in choices if choice != spec.default)
        return [spec.name, value], value
    if kind is Path:
        return [spec.name, "in.jsonl"], Path("in.jsonl")
    if kind is int:
        return [spec.name, "7"], 7
    if kind is float:
        return [spec.name, "7.5"], 7.5
    return [spec.name, "value"], "value"


_TRACE = ["--input-file", "t.jsonl", "--custom-dataset-type", "mooncake_trace"]
# The options a value needs beside it to make a valid run.
PARTNERS = {
    "fixed_schedule": _TRACE,
    "fixed_schedule_start_offset_ms": ["--fixed-schedule", *_TRACE],
    "fixed_schedule_end_offset_ms": ["--fixed-schedule", *_TRACE],
    "fixed_schedule_speedup": ["--fixed-schedule", *_TRACE],
    "burstiness": ["--request-rate", "5", "--request-rate-mode", "gamma"],
    "request_rate_mode": ["--request-rate", "5"],
    "prompt_prefix_pool_size": ["--prompt-prefix-length", "4"],
    "prompt_prefix_length": ["--prompt-prefix-pool-size", "2"],
    "input_file": ["--custom-dataset-type", "single_turn"],
    "custom_dataset_type": ["--input-file", "t.jsonl"],
    "public_dataset": ["--input-file", "t.json"],
}


@pytest.mark.parametrize("spec", PROFILE_OPTIONS, ids=lambda spec: spec.name)
def test_each_option_lands_in_its_field(spec: ProfileOption) -> None:
    argv, expected = _sample(spec)
    required = [] if spec.field == "model" else ["--model", "m"]
    [(_, config)] = parse_profile_argv([*required, *PARTNERS.get(spec.field, []), *argv])
    section = getattr(config, spec.section) if spec.section else config
    value = getattr(section, spec.field)
    assert value == expected


def test_a_validation_error_names_the_option_typed() -> None:
    with pytest.raises(UsageError, match=r"^invalid --isl: "):
        parse_profile_argv(["--model", "m", "--isl", "0"])
    with pytest.raises(UsageError, match=r"^invalid --request-timeout-seconds: "):
        parse_profile_argv(["--model", "m", "--request-timeout-seconds", "0"])


def test_a_whole_model_error_is_its_message_alone() -> None:
    with pytest.raises(UsageError, match=r"^--request-count and --benchmark-duration cannot be used together$"):
        parse_profile_argv(["--model", "m", "--request-count", "5", "--benchmark-duration", "3"])


def test_describe_validation_error_takes_other_option_names() -> None:
    try:
        RunConfig.model_validate({"endpoint": {"model": "m"}, "workers": -1})
    except ValidationError as exc:
        assert describe_validation_error(exc, {("workers",): "--procs"}).startswith("invalid --procs: ")
    else:
        pytest.fail("workers=-1 was accepted")
