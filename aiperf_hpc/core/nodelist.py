"""Slurm hostlist expansion: `"node[1-3,7],gpu01"` -> `["node1", "node2", "node3", "node7", "gpu01"]`.

The form Slurm prints in `SLURM_JOB_NODELIST` and `SLURM_STEP_NODELIST`: comma-separated entries, each
a plain host name or a prefix followed by one bracketed list of numbers and ranges (`node[01-03,7]`).
Zero padding is kept, its width taken from each range's first number (`[08-10]` -> 08, 09, 10).
Anything else (a suffix after the brackets, several bracket groups, nested brackets) is refused with
`ValueError` rather than guessed at: `scontrol show hostnames` expands those forms on a cluster.
"""

from __future__ import annotations

import re

MAX_HOSTS = 100_000
"""A hostlist that expands to more names than this is refused (no cluster has that many nodes)."""

_NAME = re.compile(r"[A-Za-z0-9._-]+")
_ENTRY = re.compile(r"(?P<prefix>[A-Za-z0-9._-]*)\[(?P<ranges>[^\[\]]*)\]")
_RANGE = re.compile(r"(?P<lo>\d+)(?:-(?P<hi>\d+))?")


def expand_nodelist(hostlist: str) -> list[str]:
    """Every host name of `hostlist`, in order, duplicates kept as given.

    Raises ValueError naming the offending part when the text is empty or not of the supported form.
    """
    if not hostlist:
        raise ValueError("empty hostlist")
    hosts: list[str] = []
    for entry in _split_entries(hostlist):
        hosts.extend(_expand_entry(entry))
        if len(hosts) > MAX_HOSTS:
            raise ValueError(f"hostlist {hostlist!r} expands to more than {MAX_HOSTS} hosts")
    return hosts


def _split_entries(hostlist: str) -> list[str]:
    """Split on the commas outside brackets."""
    entries: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(hostlist):
        if char == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"nested brackets in hostlist {hostlist!r}")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in hostlist {hostlist!r}")
        elif char == "," and depth == 0:
            entries.append(hostlist[start:index])
            start = index + 1
    if depth != 0:
        raise ValueError(f"unbalanced '[' in hostlist {hostlist!r}")
    entries.append(hostlist[start:])
    return entries


def _expand_entry(entry: str) -> list[str]:
    if _NAME.fullmatch(entry):
        return [entry]
    match = _ENTRY.fullmatch(entry)
    if match is None:
        raise ValueError(
            f"unsupported hostlist entry {entry!r}: expected NAME or PREFIX[RANGES] with nothing after the brackets"
        )
    prefix = match["prefix"]
    hosts: list[str] = []
    for part in match["ranges"].split(","):
        numbers = _RANGE.fullmatch(part)
        if numbers is None:
            raise ValueError(f"bad range {part!r} in hostlist entry {entry!r}")
        lo_text = numbers["lo"]
        lo = int(lo_text)
        hi = int(numbers["hi"]) if numbers["hi"] is not None else lo
        if hi < lo:
            raise ValueError(f"descending range {part!r} in hostlist entry {entry!r}")
        if hi - lo >= MAX_HOSTS:
            raise ValueError(f"range {part!r} in hostlist entry {entry!r} has more than {MAX_HOSTS} hosts")
        width = len(lo_text)
        hosts.extend(f"{prefix}{number:0{width}d}" for number in range(lo, hi + 1))
    return hosts
