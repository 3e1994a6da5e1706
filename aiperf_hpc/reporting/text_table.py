"""Printing a wide rich table to a log or a pipe without cropping it.

A console that is not a terminal has no width of its own (rich assumes 80 columns), and the
registry and comparison tables are wider than any fixed guess: off a terminal they are rendered at
their natural width as plain text, so a script or a Slurm log sees every cell whole. On a terminal
rich fits them to the window as usual.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

_MEASURING_WIDTH = 10_000


def print_table(table: Table, console: Console) -> None:
    """Print `table` to `console`: fitted on a terminal, at its natural width elsewhere."""
    if console.is_terminal:
        console.print(table)
        return
    measuring = Console(file=io.StringIO(), width=_MEASURING_WIDTH, color_system=None)
    width = Measurement.get(measuring, measuring.options, table).maximum
    buffer = io.StringIO()
    Console(file=buffer, width=max(width, 80), color_system=None, force_terminal=False).print(table)
    console.print(buffer.getvalue(), end="", soft_wrap=True, markup=False, highlight=False, emoji=False)
