"""The sbatch script of `aiperf-hpc submit`: a whole experiment (optional server + profile) as one job.

Pure: `sbatch_script` takes values and returns the script text; `launch.submit` writes and submits it.

Without a server command the job runs `aiperf-hpc profile --launcher slurm` on its N nodes. With one,
the job has M + N nodes and splits them in order:

```
  node 0 .. M-1   server step: `srun --overlap ... bash -c SERVER_COMMAND` in the background,
                  log in ARTIFACT_DIR/server-JOBID.log; node 0 also runs this script (the batch step),
                  hence the profile's controller
  node M .. M+N-1 the profile's worker step (AIPERF_HPC_NODELIST names these nodes)
```

The script waits for `http://<node 0>:PORT/health` (bounded; the server log's tail on failure), runs
the profile against that URL, and stops the server step on every exit path (EXIT trap). The job's
exit code is the profile's. On SIGTERM (scancel, time limit) the script waits for the profile, which
received the same signal, to write its partial results.

Quoting: every user string goes through `shlex.quote`. `#SBATCH` lines are read by sbatch's own
parser, which agrees with shlex except that it treats a backslash as an escape even inside single
quotes and cannot continue a line, so those two characters are refused in values that land there.
"""

from __future__ import annotations

import math
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aiperf_hpc.artifacts import SBATCH_SERVER_LOG
from aiperf_hpc.errors import UsageError

SERVER_STEP_NAME = "aiperf-hpc-server"
NODELIST_ENV = "AIPERF_HPC_NODELIST"
HEALTH_POLL_INTERVAL_S = 2
SERVER_STOP_GRACE_S = 30
LOG_TAIL_LINES = 50

# Options the script itself passes to `aiperf-hpc profile`; the user sets them through submit's own.
_RESERVED_PROFILE_OPTIONS = {
    "--launcher": "submit always uses --launcher slurm",
    "--nodes": "give it to submit (--nodes)",
    "--workers-per-node": "give it to submit (--workers-per-node)",
    "--artifact-dir": "submit passes its artifact dir",
}
_URL_OPTIONS = ("--url", "-u")
# sbatch options the script writes itself, long and short spellings.
_RESERVED_SBATCH_SHORT = {
    "J": "job-name",
    "N": "nodes",
    "n": "ntasks",
    "t": "time",
    "p": "partition",
    "A": "account",
    "q": "qos",
    "o": "output",
    "e": "error",
}
_RESERVED_SBATCH_LONG = (*_RESERVED_SBATCH_SHORT.values(), "ntasks-per-node")

_TIME = re.compile(r"(?:(?P<days>\d+)-)?(?P<hours>\d{1,2}):(?P<minutes>[0-5]\d):(?P<seconds>[0-5]\d)")


@dataclass(frozen=True, kw_only=True)
class SubmitOptions:
    """What `aiperf-hpc submit` needs besides the profile's own options.

    `time` is Slurm's HH:MM:SS or D-HH:MM:SS. `extra_sbatch` holds raw sbatch options written as
    `#SBATCH` lines (`--gres=gpu:4`). `python` is the interpreter with aiperf-hpc installed, as the
    compute nodes see it. `setup` lines run first, as shell code (`module load ...`). The server
    command runs once per server node, as shell code, and must listen on `server_port` on all
    interfaces.
    """

    nodes: int
    workers_per_node: int
    partition: str | None = None
    account: str | None = None
    time: str
    qos: str | None = None
    server_command: str | None = None
    server_nodes: int = 1
    server_health_timeout_s: float = 900.0
    server_port: int = 8000
    job_name: str = "aiperf-hpc"
    artifact_dir: Path
    extra_sbatch: list[str] = field(default_factory=list)
    python: str = sys.executable
    setup: list[str] = field(default_factory=list)


def check_submit(options: SubmitOptions, profile_args: Sequence[str]) -> None:
    """Raise UsageError (one line) for the first thing that cannot make a valid job."""
    _check_counts(options)
    _check_time(options.time)
    _directive_value("--job-name", options.job_name)
    if not options.job_name:
        raise UsageError("--job-name must not be empty")
    for option, value in (("--partition", options.partition), ("--account", options.account), ("--qos", options.qos)):
        if value is not None:
            _check_name(option, value)
    _directive_value("--artifact-dir", str(options.artifact_dir))
    if not options.python:
        raise UsageError("the Python interpreter path must not be empty")
    for line in options.extra_sbatch:
        _check_extra_sbatch(line)
    _check_profile_args(options, profile_args)


def sbatch_script(options: SubmitOptions, profile_args: Sequence[str], *, submit_dir: Path) -> str:
    """The job script. `profile_args` are `aiperf-hpc profile` arguments, one string each; a relative
    artifact dir is taken relative to `submit_dir` (absolute), where the job also starts.

    Raises UsageError as `check_submit` does.
    """
    check_submit(options, profile_args)
    artifact_dir = submit_dir / options.artifact_dir
    lines = [*_directives(options, artifact_dir), *_preamble(options, submit_dir, artifact_dir)]
    if options.server_command is None:
        lines += _profile_command(options, profile_args, url=None, run="exec")
    else:
        lines += _server_job(options, profile_args, options.server_command)
    return "\n".join(lines) + "\n"


def _check_counts(options: SubmitOptions) -> None:
    for option, value in (
        ("--nodes", options.nodes),
        ("--workers-per-node", options.workers_per_node),
        ("--server-nodes", options.server_nodes),
    ):
        if value < 1:
            raise UsageError(f"{option} must be at least 1, got {value}")
    if options.server_command is None:
        if options.server_nodes != 1:
            raise UsageError("--server-nodes needs --server-command")
        return
    if not options.server_command.strip():
        raise UsageError("--server-command must not be empty")
    if not 1 <= options.server_port <= 65535:
        raise UsageError(f"--server-port must be 1..65535, got {options.server_port}")
    if not (math.isfinite(options.server_health_timeout_s) and options.server_health_timeout_s > 0):
        raise UsageError(f"--server-health-timeout must be more than 0 s, got {options.server_health_timeout_s}")


def _check_time(time: str) -> None:
    match = _TIME.fullmatch(time)
    if match is None:
        raise UsageError(f"--time must be HH:MM:SS or D-HH:MM:SS, got {time!r}")
    if match["days"] is not None and int(match["hours"]) > 23:
        raise UsageError(f"--time {time!r}: hours must be 0..23 after a day count")
    if not any(int(match[part] or 0) for part in ("days", "hours", "minutes", "seconds")):
        raise UsageError("--time must be more than 00:00:00")


def _check_name(option: str, value: str) -> None:
    if not value or any(char.isspace() or not char.isprintable() for char in value):
        raise UsageError(f"{option} must be a name without whitespace, got {value!r}")
    _directive_value(option, value)


def _directive_value(option: str, value: str) -> str:
    """`value` quoted for an `#SBATCH` line, or UsageError if sbatch's parser cannot carry it."""
    if "\\" in value or "\n" in value or "\r" in value or "\0" in value:
        raise UsageError(f"{option} must not contain a backslash or a line break (sbatch cannot read it): {value!r}")
    return shlex.quote(value)


def _check_extra_sbatch(line: str) -> None:
    if "\n" in line or "\r" in line or "\0" in line:
        raise UsageError(f"--extra-sbatch must be one line: {line!r}")
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"--extra-sbatch {line!r}: {exc}") from None
    if not tokens or not tokens[0].startswith("-"):
        raise UsageError(f"--extra-sbatch takes sbatch options such as --gres=gpu:4, got {line!r}")
    for token in tokens:
        reserved = _reserved_sbatch_option(token)
        if reserved is not None:
            raise UsageError(f"--extra-sbatch {line!r}: submit writes --{reserved} itself; use its own option")


def _reserved_sbatch_option(token: str) -> str | None:
    """The reserved option `token` spells, long abbreviations included (sbatch accepts those)."""
    if token.startswith("--"):
        name = token[2:].split("=", 1)[0]
        return next((reserved for reserved in _RESERVED_SBATCH_LONG if name and reserved.startswith(name)), None)
    if len(token) >= 2 and token[0] == "-":
        return _RESERVED_SBATCH_SHORT.get(token[1])
    return None


def _check_profile_args(options: SubmitOptions, profile_args: Sequence[str]) -> None:
    has_url = False
    for arg in profile_args:
        if "\0" in arg:
            raise UsageError(f"profile argument {arg!r} contains a NUL byte")
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if name in _RESERVED_PROFILE_OPTIONS:
            raise UsageError(f"{name} is set by submit itself: {_RESERVED_PROFILE_OPTIONS[name]}")
        has_url = has_url or name in _URL_OPTIONS
    if options.server_command is not None and has_url:
        raise UsageError("--url cannot be given with --server-command: the profile uses the server's URL")
    if options.server_command is None and not has_url:
        raise UsageError("give --url (the server the compute nodes load) or --server-command (a server the job starts)")


def _directives(options: SubmitOptions, artifact_dir: Path) -> list[str]:
    nodes = options.nodes + (options.server_nodes if options.server_command is not None else 0)
    # In --output/--error `%` starts a Slurm filename pattern; `%%` is a literal percent sign.
    log_stem = str(artifact_dir).replace("%", "%%") + "/slurm-%j"
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={_directive_value('--job-name', options.job_name)}",
        f"#SBATCH --nodes={nodes}",
        f"#SBATCH --ntasks-per-node={options.workers_per_node}",
        f"#SBATCH --time={options.time}",
    ]
    for option, value in (("--partition", options.partition), ("--account", options.account), ("--qos", options.qos)):
        if value is not None:
            lines.append(f"#SBATCH {option}={_directive_value(option, value)}")
    lines.append(f"#SBATCH --output={_directive_value('--artifact-dir', log_stem + '.out')}")
    lines.append(f"#SBATCH --error={_directive_value('--artifact-dir', log_stem + '.err')}")
    lines += [f"#SBATCH {line}" for line in options.extra_sbatch]
    return lines


def _preamble(options: SubmitOptions, submit_dir: Path, artifact_dir: Path) -> list[str]:
    lines = [
        "#",
        "# Written by `aiperf-hpc submit`. sbatch reads #SBATCH lines only above the first command.",
        "set -euo pipefail",
        "",
    ]
    if options.setup:
        lines += [
            "# Site setup, with `set -u` off: module and conda scripts read unset variables.",
            "set +u",
            *options.setup,
            "set -u",
            "",
        ]
    lines += [
        f"cd {shlex.quote(str(submit_dir))}",
        f"python={shlex.quote(options.python)}",
        f"artifact_dir={shlex.quote(str(artifact_dir))}",
        "",
    ]
    return lines


def _profile_command(
    options: SubmitOptions, profile_args: Sequence[str], *, url: str | None, run: Literal["exec", "status"]
) -> list[str]:
    """The `aiperf-hpc profile` command, one option per line. `run` is "exec" (the script becomes
    the profile) or "status" (the exit code is kept in `$status` for the EXIT trap)."""
    head = '"$python" -m aiperf_hpc.cli profile --launcher slurm'
    if url is not None:
        head += f" --url {url}"
    groups: list[list[str]] = []
    for arg in profile_args:
        if arg.startswith("-") or not groups:
            groups.append([])
        groups[-1].append(shlex.quote(arg))
    tail = f'--nodes {options.nodes} --workers-per-node {options.workers_per_node} --artifact-dir "$artifact_dir"'
    if run == "exec":
        return [f"exec {head} \\", *(f"  {' '.join(group)} \\" for group in groups), f"  {tail}"]
    return [
        "status=0",
        f"{head} \\",
        *(f"  {' '.join(group)} \\" for group in groups),
        f"  {tail} || status=$?",
        'exit "$status"',
    ]


def _server_job(options: SubmitOptions, profile_args: Sequence[str], server_command: str) -> list[str]:
    m, n = options.server_nodes, options.nodes
    timeout_s = math.ceil(options.server_health_timeout_s)
    return [
        f"server_port={options.server_port}",
        f"server_health_timeout_s={timeout_s}",
        "",
        f"# The allocation in order: {m} server node(s), then {n} node(s) for the profile's workers.",
        'job_nodes="$(scontrol show hostnames "$SLURM_JOB_NODELIST")"',
        'mapfile -t nodes <<< "$job_nodes"',
        f'server_nodes=("${{nodes[@]:0:{m}}}")',
        f'load_nodes=("${{nodes[@]:{m}:{n}}}")',
        f"if (( ${{#load_nodes[@]}} < {n} )); then",
        f'  echo "aiperf-hpc: the job has ${{#nodes[@]}} nodes; {m + n} needed ({m} server + {n} load)" >&2',
        "  exit 1",
        "fi",
        'server_url="http://${server_nodes[0]}:${server_port}"',
        f'server_log="$artifact_dir/{SBATCH_SERVER_LOG}"',
        f'{NODELIST_ENV}="$(IFS=,; echo "${{load_nodes[*]}}")"',
        f"export {NODELIST_ENV}  # the profile puts its workers on these nodes only",
        'echo "aiperf-hpc: job $SLURM_JOB_ID: server on ${server_nodes[*]} ($server_url), workers on ${load_nodes[*]}"',
        "",
        "# The server is its own step, in the background. --overlap: it holds no resources exclusively, so",
        "# the workers' step never waits for it. --kill-on-bad-exit: a multi-node server dies as a whole.",
        f"srun --job-name={SERVER_STEP_NAME} --nodes={m} --ntasks={m} --ntasks-per-node=1 \\",
        '  --nodelist="$(IFS=,; echo "${server_nodes[*]}")" --overlap --kill-on-bad-exit=1 \\',
        f'  bash -c {shlex.quote(server_command)} </dev/null >"$server_log" 2>&1 &',
        "server_pid=$!",
        "",
        "# wait_gone PID SECONDS: succeeds once PID has exited, fails if it still runs after SECONDS.",
        "wait_gone() {",
        "  local pid=$1 left_s=$2",
        '  while kill -0 "$pid" 2>/dev/null; do',
        "    (( left_s-- > 0 )) || return 1",
        "    sleep 1",
        "  done",
        "}",
        "",
        "# Stop the server on every exit path (profile failed, health wait failed, SIGTERM); keep the exit code.",
        "# SIGTERM to the server's tasks first, so it can shut down cleanly; then SIGTERM to srun, which",
        "# cancels the step (SIGKILL); then scancel.",
        "stop_server() {",
        "  local status=$? step_id",
        "  set +e",
        "  trap - EXIT",
        '  if kill -0 "$server_pid" 2>/dev/null; then',
        '    echo "aiperf-hpc: stopping the server step" >&2',
        '    step_id="$(squeue --noheader --steps --jobs="$SLURM_JOB_ID" --format="%i %j" \\',
        f'      | awk \'$2 == "{SERVER_STEP_NAME}" {{print $1; exit}}\')"',
        '    [[ -n "$step_id" ]] && scancel --quiet --signal=TERM "$step_id" 2>/dev/null',
        f'    if ! wait_gone "$server_pid" {SERVER_STOP_GRACE_S}; then',
        '      kill -TERM "$server_pid" 2>/dev/null',
        f'      if ! wait_gone "$server_pid" {SERVER_STOP_GRACE_S}; then',
        '        [[ -n "$step_id" ]] && scancel --quiet "$step_id"',
        '        echo "aiperf-hpc: the server step did not stop; Slurm ends it with the job" >&2',
        "      fi",
        "    fi",
        "  fi",
        '  exit "$status"',
        "}",
        "trap stop_server EXIT",
        "trap 'exit 143' TERM",
        "",
        "# server_ready URL: the URL answers 2xx. No proxy: compute nodes talk to each other directly.",
        "server_ready() {",
        '  "$python" -c \'import sys, urllib.request as u; u.build_opener(u.ProxyHandler({})).open(sys.argv[1], '
        "timeout=5).close()' \\",
        '    "$1" >/dev/null 2>&1',
        "}",
        "# server_failed MESSAGE: say why, show the server log's tail, end the job with exit code 1.",
        "server_failed() {",
        f'  echo "aiperf-hpc: $1; last {LOG_TAIL_LINES} lines of $server_log:" >&2',
        f'  tail -n {LOG_TAIL_LINES} "$server_log" >&2 || true',
        "  exit 1",
        "}",
        'echo "aiperf-hpc: waiting up to ${server_health_timeout_s}s for $server_url/health"',
        "health_deadline_s=$(( SECONDS + server_health_timeout_s ))",
        'until server_ready "$server_url/health"; do',
        '  kill -0 "$server_pid" 2>/dev/null ||',
        '    server_failed "the server step ended before $server_url/health answered"',
        "  (( SECONDS < health_deadline_s )) ||",
        '    server_failed "$server_url/health did not answer within ${server_health_timeout_s}s"',
        f"  sleep {HEALTH_POLL_INTERVAL_S}",
        "done",
        'echo "aiperf-hpc: the server answers $server_url/health"',
        "",
        "# scancel and the time limit send SIGTERM to every process of the job, the profile included:",
        "# bash runs this trap once the profile has ended, so it can write its partial results first.",
        "trap 'echo \"aiperf-hpc: SIGTERM: letting the profile write its results\" >&2' TERM",
        *_profile_command(options, profile_args, url='"$server_url"', run="status"),
    ]
