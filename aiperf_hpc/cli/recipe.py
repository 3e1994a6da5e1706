"""`aiperf-hpc run RECIPE`: run a recipe file here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

SET_HELP = "Override a recipe value: KEY=VALUE, KEY dotted (benchmark.concurrency=8), VALUE as YAML (repeat)."


def run_recipe(
    recipe: Annotated[Path, Parameter(help="The recipe file (YAML): server, benchmark(s), slurm.")],
    /,
    *,
    set_: Annotated[list[str] | None, Parameter(name="--set", help=SET_HELP, negative_iterable=())] = None,
) -> int:
    """Run a recipe here: start its server, wait for its health, run its benchmark(s), stop the server.

    See docs/recipes.md for the format."""
    from aiperf_hpc.recipe import load_recipe
    from aiperf_hpc.run_recipe import run_recipe as run

    return int(run(load_recipe(recipe, set_), recipe))
