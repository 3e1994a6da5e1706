"""Profile options given as data (a recipe's YAML, a REST body) turned into `profile` arguments.

Options given as data go through the same parser and the same validation as the command line, so a
recipe, a REST request and a shell command accept exactly the same things and refuse them with the
same messages. Keys are option names without the leading dashes, in either spelling
(`request-rate` or `request_rate`); values map to arguments as follows:

    true          -> --name              false -> --no-name
    a list        -> --name V1 --name V2 (a repeatable option; a sweep is "1,4,16" or [1, 4, 16])
    a dict        -> --name k:v ...      (--header, --extra-inputs; a non-string v is written as JSON)
    null          -> left out (the default)
    anything else -> --name VALUE
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from aiperf_hpc.config import RunConfig
from aiperf_hpc.errors import UsageError

API_KEY_ENV = "AIPERF_HPC_API_KEY"
"""`--api-key` from the environment: what the tool itself uses to pass a key to a run it starts, so
the key never sits on a command line (`ps`) or in a generated script."""

# Options whose list value is one comma-separated sweep, not a repeated option.
_SWEEPABLE = frozenset({"concurrency", "request-rate"})


def options_to_argv(options: Mapping[str, Any]) -> list[str]:
    """`{"concurrency": 8, "streaming": True}` -> `["--concurrency", "8", "--streaming"]`."""
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


def move_api_key_to_env(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """`argv` without `--api-key KEY` (or `--api-key=KEY`), and the environment that passes KEY instead."""
    kept: list[str] = []
    env: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if arg == "--api-key":
            env[API_KEY_ENV] = next(args, "")
        elif arg.startswith("--api-key="):
            env[API_KEY_ENV] = arg.removeprefix("--api-key=")
        else:
            kept.append(arg)
    return kept, env


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"--{name}: expected a string or a number, got {value!r}")
    return str(value)


def parse_profile_argv(argv: list[str]) -> list[tuple[str, RunConfig]]:
    """Parse and validate `profile` arguments exactly as `aiperf-hpc profile` would, without running.

    Returns one `(label, RunConfig)` per run (several for a sweep). Raises UsageError with the
    one-line message the command line would print."""
    from cyclopts import CycloptsError

    from aiperf_hpc.cli import app
    from aiperf_hpc.cli_options import build_run_configs

    try:
        _, bound, _ = app.parse_args(["profile", *argv], exit_on_error=False, print_error=False)
    except CycloptsError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    bound.apply_defaults()
    return build_run_configs(**bound.arguments)
