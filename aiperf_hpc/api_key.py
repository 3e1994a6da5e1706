"""How an API key travels to a run the tool starts itself: in the environment, never in an argv.

`ps` shows every command line on a shared node, and job scripts are files, so `submit`, recipes and
the REST service move `--api-key KEY` out of the arguments they pass on and into `API_KEY_ENV`,
which `profile` reads as the option's value.
"""

from __future__ import annotations

API_KEY_ENV = "AIPERF_HPC_API_KEY"
"""`--api-key` from the environment: what the tool itself uses to pass a key to a run it starts, so
the key never sits on a command line (`ps`) or in a generated script."""


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
