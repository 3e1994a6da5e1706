"""The `profile` options, built from the one declaration of each: the `Option` metadata on config fields.

Every front door parses `profile` options here: the command line (`cli.profile`), recipes, `submit`
and the REST service (`parse_profile_argv`, after `options_to_argv` for options given as data), so
they accept exactly the same things and refuse them with the same one-line messages.

    config.py fields + Option  ->  PROFILE_OPTIONS  ->  profile_signature()   (what cyclopts parses)
                                                    ->  build_run_configs()   (values -> RunConfigs)
                                                    ->  describe_validation_error()  (field -> option)

Option names follow NVIDIA AIPerf (and `vllm bench serve` where AIPerf has none), so command lines
carry over. `--concurrency` and `--request-rate` accept comma-separated lists: a sweep, one run per
value.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

import orjson
from cyclopts import App, CycloptsError, Group, Parameter
from pydantic import BaseModel, ValidationError

from aiperf_hpc.config import RunConfig
from aiperf_hpc.errors import UsageError
from aiperf_hpc.option_spec import OPTION_GROUPS, Option, parse_sweep

# The config sections that hold options, in the order their fields are listed; RunConfig's own
# fields (workers, artifact_dir) are under the empty path.
_SECTIONS = ("endpoint", "load", "inputs", "metrics", "", "server_metrics", "live", "cluster")
_GROUPS = {name: Group(name, sort_key=index) for index, name in enumerate(OPTION_GROUPS)}


@dataclass(frozen=True)
class ProfileOption:
    """One `profile` option: where its value goes in RunConfig and how it is typed."""

    section: str  # RunConfig field of the sub-model ("" for RunConfig's own field)
    field: str
    option: Option
    cli_type: Any
    default: Any

    @property
    def name(self) -> str:
        """The canonical spelling, e.g. `--isl`."""
        return self.option.names[0] if self.option.names else f"--{self.field.replace('_', '-')}"

    @property
    def parameter(self) -> str:
        """The keyword the parsed value arrives under: unique across sections."""
        return f"{self.section}__{self.field}" if self.section else self.field


def _section_model(section: str) -> type[BaseModel]:
    if not section:
        return RunConfig
    model = RunConfig.model_fields[section].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel), section
    return model


def _collect() -> tuple[ProfileOption, ...]:
    found = []
    for section in _SECTIONS:
        model = _section_model(section)
        for field, info in model.model_fields.items():
            option = next((item for item in info.metadata if isinstance(item, Option)), None)
            if option is None:
                continue
            # A typed form other than the field's own defaults to None: the field keeps its default.
            default = None if option.cli_type is not None or info.default_factory is not None else info.default
            if info.is_required():
                default = inspect.Parameter.empty
            found.append(ProfileOption(section, field, option, option.cli_type or info.annotation, default))
    return tuple(found)


PROFILE_OPTIONS = _collect()
OPTION_BY_FIELD: dict[tuple[str, ...], str] = {
    tuple(part for part in (spec.section, spec.field) if part): spec.name for spec in PROFILE_OPTIONS
}


def profile_signature() -> inspect.Signature:
    """The keyword-only signature cyclopts parses `profile` with: one parameter per option."""
    parameters = []
    for spec in PROFILE_OPTIONS:
        option = spec.option
        extra: dict[str, Any] = {}
        if option.negative is not None:
            extra["negative"] = option.negative
        if option.env_var is not None:
            extra["env_var"] = option.env_var
        if _is_list(spec.cli_type):
            extra["negative_iterable"] = ()
        cyclopts_parameter = Parameter(
            name=list(option.names) or [spec.name], help=option.help or None, group=_GROUPS[option.group], **extra
        )
        cli_type = (str | None) if option.sweep is not None else spec.cli_type
        parameters.append(
            inspect.Parameter(
                spec.parameter,
                inspect.Parameter.KEYWORD_ONLY,
                default=spec.default,
                annotation=Annotated[cli_type, cyclopts_parameter],
            )
        )
    return inspect.Signature(parameters, return_annotation=int)


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(get_origin(arg) is list for arg in get_args(annotation))


Command = TypeVar("Command", bound=Callable[..., int])


def takes_profile_options(command: Command) -> Command:
    """Give `command(**values)` the `profile` options as its signature, for cyclopts to parse."""
    command.__signature__ = profile_signature()  # type: ignore[attr-defined]
    return command


def build_run_configs(values: Mapping[str, Any]) -> list[tuple[str, RunConfig]]:
    """One `(label, RunConfig)` per run from parsed option values (keyed by `ProfileOption.parameter`;
    a missing one takes its default): a single run, or one per value of a swept option."""
    given = {spec.parameter: values.get(spec.parameter, spec.default) for spec in PROFILE_OPTIONS}
    sweeps = {
        spec.field: parse_sweep(given[spec.parameter], spec.name, spec.option.sweep)
        for spec in PROFILE_OPTIONS
        if spec.option.sweep is not None and given[spec.parameter] is not None
    }
    concurrencies, rates = sweeps.get("concurrency", []), sweeps.get("request_rate", [])
    if len(concurrencies) > 1 and len(rates) > 1:
        raise UsageError("sweep one of --concurrency and --request-rate, not both")
    data: dict[str, Any] = {section: {} for section in _SECTIONS if section}
    # Parsed in a fixed order (goodput first, as before the schema), so the first error is always the same.
    for spec in sorted(PROFILE_OPTIONS, key=lambda s: s.field != "goodput"):
        value = given[spec.parameter]
        if value is None or spec.option.sweep is not None or spec.field == "artifact_dir":
            continue
        if spec.option.parse is not None:
            value = spec.option.parse(value)
        (data[spec.section] if spec.section else data)[spec.field] = value
    endpoint = data["endpoint"]
    base_dir = given["artifact_dir"] or _default_artifact_dir(
        endpoint["model"],
        endpoint.get("endpoint_type", "chat"),
        given["load__concurrency"],
        given["load__request_rate"],
        fixed_schedule=bool(data["load"].get("fixed_schedule")),
    )
    concurrency = concurrencies[0] if concurrencies else None
    rate = rates[0] if rates else None
    if len(concurrencies) > 1:
        points = [(f"concurrency{c}", c, rate) for c in concurrencies]
    elif len(rates) > 1:
        points = [(f"request_rate{r:g}", concurrency, r) for r in rates]
    else:
        points = [("", concurrency, rate)]
    return [(label, _run_config(data, c, r, base_dir / label)) for label, c, r in points]


def _run_config(data: dict[str, Any], concurrency: int | None, rate: float | None, artifact_dir: Path) -> RunConfig:
    load = data["load"] | {"concurrency": concurrency, "request_rate": rate}
    try:
        return RunConfig.model_validate(data | {"load": load, "artifact_dir": artifact_dir})
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc)) from None


def _default_artifact_dir(
    model: str, endpoint_type: str, concurrency: str | None, request_rate: str | None, *, fixed_schedule: bool
) -> Path:
    safe_model = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    if fixed_schedule:
        mode = "fixed-schedule"
    elif request_rate is not None:
        mode = f"rate{request_rate.replace(',', '_')}"
    else:
        mode = f"concurrency{(concurrency or '1').replace(',', '_')}"
    return Path("artifacts") / f"{safe_model}-{endpoint_type}-{mode}"


def describe_validation_error(
    exc: ValidationError, option_names: Mapping[tuple[str, ...], str] = OPTION_BY_FIELD
) -> str:
    """One line naming the option a user typed (not the pydantic field) and what is wrong.

    `option_names` maps a field's path (`("inputs", "isl_mean")`) to its option; an error on a
    field it lacks names `--field-name`, and an error of a whole model (two options that do not
    go together) is its message alone."""
    first = exc.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    path = next((loc[:end] for end in range(len(loc), 0, -1) if loc[:end] in option_names), None)
    if path is not None:
        return f"invalid {option_names[path]}: {message}"
    if not loc or loc[-1] in RunConfig.model_fields:  # a model's own check, not one field's
        return message
    return f"invalid --{loc[-1].replace('_', '-')}: {message}"


# --- options given as data (a recipe's YAML, a REST body) ----------------------------------------


# Options whose list value is one comma-separated sweep, not a repeated option.
_SWEEPABLE = frozenset(spec.name.removeprefix("--") for spec in PROFILE_OPTIONS if spec.option.sweep is not None)


def options_to_argv(options: Mapping[str, Any]) -> list[str]:
    """Profile options given as data -> `profile` arguments, parsed by the same parser as the command line.

    Keys are option names without the leading dashes, in either spelling (`request-rate` or
    `request_rate`); values map to arguments as follows:

        true          -> --name              false -> --no-name
        a list        -> --name V1 --name V2 (a repeatable option; a sweep is "1,4,16" or [1, 4, 16])
        a dict        -> --name k:v ...      (--header, --extra-inputs; a non-string v is written as JSON)
        null          -> left out (the default)
        anything else -> --name VALUE
    """
    argv: list[str] = []
    for key, value in options.items():
        if not isinstance(key, str) or not key.strip("-"):
            raise UsageError(f"option names must be non-empty strings, got {key!r}")
        name = key.strip("-").replace("_", "-")
        flag = f"--{name}"
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{name}")
        elif isinstance(value, list) and name in _SWEEPABLE:
            argv += [flag, ",".join(_scalar(name, item) for item in value)]
        elif isinstance(value, list):
            for item in value:
                argv += [flag, _scalar(name, item)]
        elif isinstance(value, dict):
            for inner_key, inner in value.items():
                text = inner if isinstance(inner, str) else orjson.dumps(inner).decode()
                argv += [flag, f"{inner_key}:{text}"]
        else:
            argv += [flag, _scalar(name, value)]
    return argv


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"--{name}: expected a string or a number, got {value!r}")
    return str(value)


@cache
def _parser() -> App:
    """An app with the `profile` command alone, named as the real one so messages read the same."""
    app = App(name="aiperf-hpc", help_flags=[], version_flags=[])

    @takes_profile_options
    def profile(**values: Any) -> int:
        return 0

    app.command(profile)
    return app


def parse_profile_argv(argv: list[str]) -> list[tuple[str, RunConfig]]:
    """Parse and validate `profile` arguments exactly as `aiperf-hpc profile` would, without running.

    Returns one `(label, RunConfig)` per run (several for a sweep). Raises UsageError with the
    one-line message the command line would print."""
    try:
        _, bound, _ = _parser().parse_args(["profile", *argv], exit_on_error=False, print_error=False)
    except CycloptsError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    return build_run_configs(bound.arguments)
