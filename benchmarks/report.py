"""Medians, ratios and the report: one JSON document (every raw run) and one markdown table.

The table has the issue's layout, one line per figure: figure | aiperf-hpc (median) | peers
(median) | target | met?. Medians are over the runs that succeeded; a tool with no successful run
shows its failure instead of a number.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks.runs import Figures, ToolRun


@dataclass
class Line:
    """One line of the table. `met` is None where the target could not be judged (nothing measured)."""

    figure: str
    ours: str
    peers: str
    target: str
    met: bool | None


@dataclass
class RowResult:
    """One row of the issue's table, as measured. `groups` maps a group label (a server and load,
    e.g. 'zero-work c64') to the runs made under it; `medians` has the same keys, then tool, then
    figure; `ratios` are named figures such as 'ours / wrk (zero-work c64)'."""

    row: str
    title: str
    groups: dict[str, list[ToolRun]] = field(default_factory=dict)
    medians: dict[str, dict[str, Figures]] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    ratios: dict[str, float | None] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def median_figures(runs: Iterable[ToolRun]) -> dict[str, Figures]:
    """tool -> figure -> median over that tool's successful runs (None: no value)."""
    values: dict[str, dict[str, list[float]]] = {}
    tools: list[str] = []
    for run in runs:
        if run.tool not in tools:
            tools.append(run.tool)
        if not run.ok:
            continue
        for name, value in run.figures.items():
            if value is not None:
                values.setdefault(run.tool, {}).setdefault(name, []).append(value)
    result: dict[str, Figures] = {}
    for tool in tools:
        per_figure = values.get(tool, {})
        result[tool] = {name: statistics.median(series) for name, series in per_figure.items()}
    return result


def median_or_none(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def failure_of(runs: Iterable[ToolRun], tool: str) -> str:
    """'failed: NOTE' for a tool none of whose runs succeeded."""
    notes = [run.note for run in runs if run.tool == tool and run.note]
    return "failed: " + (notes[0][:160] if notes else "no result")


def fmt(value: float | None, unit: str = "", digits: int = 0, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    sign = "+" if signed and value >= 0 else ""
    text = f"{value:,.{digits}f}"
    return f"{sign}{text}{(' ' + unit) if unit else ''}"


def met_text(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[met]


def markdown(meta: dict[str, Any], rows: Sequence[RowResult]) -> str:
    out = [
        "# aiperf-hpc benchmarks",
        "",
        f"Run {meta['started']} on {meta['host']} ({meta['cpus']} CPUs), revision {meta['revision']}, {meta['mode']}, "
        f"{meta['runs']} run(s) per figure, alternating tools; medians. Raw runs: `{meta['raw_dir']}`.",
        "",
        "| figure | aiperf-hpc (median) | peers (median) | target | met? |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        for line in row.lines:
            out.append(f"| {line.figure} | {line.ours} | {line.peers} | {line.target} | {met_text(line.met)} |")
    ratio_lines = [(name, value) for row in rows for name, value in row.ratios.items()]
    if ratio_lines:
        out += ["", "## Ratios (median of the per-round ratios, same server, same session)", ""]
        out += [f"- {name}: {fmt(value, digits=2)}" for name, value in ratio_lines]
    out += ["", "## Peers", ""]
    out += [f"- {note}" for note in meta.get("peer_notes", [])] or ["- all found"]
    for row in rows:
        if row.notes or row.truth:
            out += ["", f"## {row.title} ({row.elapsed_s:.0f} s)", ""]
            out += [f"- {note}" for note in row.notes]
            if row.truth:
                out.append(f"- server truth: `{orjson.dumps(row.truth).decode()}`")
    return "\n".join(out) + "\n"


def write_report(out_stem: Path, meta: dict[str, Any], rows: Sequence[RowResult]) -> tuple[Path, Path]:
    """Write `<out_stem>.json` and `<out_stem>.md`; return both paths."""
    document = {"meta": meta, "rows": {row.row: asdict(row) for row in rows}}
    json_path = out_stem.with_suffix(".json")
    md_path = out_stem.with_suffix(".md")
    json_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
    md_path.write_text(markdown(meta, rows))
    return json_path, md_path
