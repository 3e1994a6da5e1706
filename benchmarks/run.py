"""`make bench`: every row of issue 5's table in one command, aiperf-hpc beside its peers.

    .venv/bin/python benchmarks/run.py                 # full: 3 runs per figure (about 18 min)
    .venv/bin/python benchmarks/run.py --quick         # smoke: 1 run, small loads (about 3.5 min)
    .venv/bin/python benchmarks/run.py --only rate --only startup --runs 5

Writes `artifacts/bench/<timestamp>.json` (every raw run, medians, ratios) and `.md` (the table),
and keeps each run's logs and exports under `artifacts/bench/<timestamp>/`. Exit code 0 once the
report is written, whether or not targets were met (the table says which); 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # Run as a script (`python benchmarks/run.py`), the package's directory is not on the path.
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.peers import Peers, find_aiperf, find_vllm_python, find_wrk  # noqa: E402
from benchmarks.report import RowResult, markdown, write_report  # noqa: E402
from benchmarks.scenarios import EXTRA_ROWS, ROWS, Bench, run_row  # noqa: E402
from benchmarks.tokenizer_dir import ensure_tokenizer_dir  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "artifacts" / "bench"
CORPUS = REPO_ROOT / "aiperf_hpc" / "dataset" / "corpus.txt"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run per figure, small loads")
    parser.add_argument(
        "--only",
        action="append",
        choices=[*ROWS, *EXTRA_ROWS],
        metavar="ROW",
        help=f"run only this row (repeat): {', '.join(ROWS)}; and, never by default, {', '.join(EXTRA_ROWS)}",
    )
    parser.add_argument("--runs", type=int, help="runs per figure (median); default 3, or 1 with --quick")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output root (default artifacts/bench)")
    parser.add_argument("--no-peers", action="store_true", help="aiperf-hpc alone (no wrk, AIPerf or vllm)")
    parser.add_argument("--no-install", action="store_true", help="do not install missing peers (wrk, AIPerf)")
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def find_peers(out_root: Path, skip: bool, install: bool) -> Peers:
    peers = Peers()
    if skip:
        peers.notes.append("peers skipped (--no-peers)")
        return peers
    peers.wrk, note = find_wrk(install)
    if note:
        peers.notes.append(note)
    peers.aiperf, note = find_aiperf(out_root / "venvs" / "aiperf", install, out_root / "venvs" / "aiperf-install.log")
    if note:
        peers.notes.append(note)
    peers.vllm_python, note = find_vllm_python()
    if note:
        peers.notes.append(note)
    if peers.aiperf is not None or peers.vllm_python is not None:
        try:
            peers.tokenizer_dir = ensure_tokenizer_dir(CORPUS, out_root / "tokenizer")
        except (OSError, RuntimeError, ValueError) as exc:
            peers.notes.append(f"could not build the peers' tokenizer directory ({exc}); AIPerf and vllm left out")
    return peers


def git_revision() -> str:
    """The checked-out commit, with '+dirty' when the tree has changes (read-only git commands)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_root: Path = args.out.resolve()
    raw_dir = out_root / stamp
    raw_dir.mkdir(parents=True, exist_ok=True)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    peers = find_peers(out_root, args.no_peers, not args.no_install)
    for note in peers.notes:
        print(f"bench: note: {note}", flush=True)
    bench = Bench(runs, args.quick, raw_dir, out_root / "cache", REPO_ROOT, peers)
    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "revision": git_revision(),
        "mode": "quick" if args.quick else "full",
        "runs": runs,
        "rows": args.only or list(ROWS),
        "raw_dir": str(raw_dir),
        "peers": {
            "wrk": peers.wrk,
            "aiperf": str(peers.aiperf) if peers.aiperf else None,
            "vllm_python": str(peers.vllm_python) if peers.vllm_python else None,
            "tokenizer_dir": str(peers.tokenizer_dir) if peers.tokenizer_dir else None,
        },
        "peer_notes": peers.notes,
    }
    started_s = time.perf_counter()
    rows: list[RowResult] = []
    for name in args.only or list(ROWS):
        print(f"bench: --- {name} ---", flush=True)
        rows.append(run_row(name, bench))
    meta["elapsed_s"] = round(time.perf_counter() - started_s, 1)
    json_path, md_path = write_report(out_root / stamp, meta, rows)
    print()
    print(markdown(meta, rows))
    print(f"bench: {meta['elapsed_s']} s; report {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
