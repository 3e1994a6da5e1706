"""`aiperf-hpc submit`: write the experiment's sbatch script into the artifact dir and hand it to sbatch.

The script comes from `core.sbatch`; this shell adds the file system and the `sbatch` call, and
translates their failures into UsageError (nothing to submit with) or RunError (sbatch refused), each
one line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from aiperf_hpc.api_key import move_api_key_to_env
from aiperf_hpc.artifacts import SBATCH_SCRIPT_FILE
from aiperf_hpc.core.sbatch import SubmitOptions, sbatch_script
from aiperf_hpc.errors import RunError, UsageError

__all__ = ["SubmitOptions", "submit"]

SBATCH_TIMEOUT_S = 120.0
"""sbatch retries on its own while slurmctld is busy; past this we give up and say so."""


def submit(options: SubmitOptions, profile_args: list[str], *, dry_run: bool) -> str:
    """Submit the job and return its id; with `dry_run`, return the script text and touch nothing.

    The script is written to `<artifact_dir>/aiperf-hpc.sbatch` (a relative artifact dir is taken
    from the current directory, which is also where the job starts). Raises UsageError for invalid
    options or a machine without sbatch, RunError when the file cannot be written or sbatch fails.
    """
    submit_dir = Path.cwd()
    profile_args, key_env = move_api_key_to_env(profile_args)  # the job inherits the key; the script never holds it
    text = sbatch_script(options, profile_args, submit_dir=submit_dir)
    if dry_run:
        return text
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise UsageError("sbatch not found: submit needs a Slurm login node")
    artifact_dir = submit_dir / options.artifact_dir
    script_path = artifact_dir / SBATCH_SCRIPT_FILE
    try:
        # Slurm opens slurm-JOBID.out in this directory when the job starts; it must exist by then.
        artifact_dir.mkdir(parents=True, exist_ok=True)
        script_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RunError(f"cannot write {script_path}: {exc.strerror or exc}") from None
    return _run_sbatch(
        [sbatch, "--parsable", str(script_path)], cwd=submit_dir, env=sbatch_environment(os.environ) | key_env
    )


def sbatch_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without the caller's SLURM_* variables (SLURM_CONF stays): submitted from inside an
    allocation, the job would otherwise inherit that allocation's settings (sbatch exports everything)."""
    return {key: value for key, value in environ.items() if not key.startswith("SLURM_") or key == "SLURM_CONF"}


def _run_sbatch(command: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> str:
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SBATCH_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RunError(f"sbatch did not answer within {SBATCH_TIMEOUT_S:g} s") from None
    except OSError as exc:
        raise RunError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    if completed.returncode != 0:
        message = _one_line(completed.stderr) or _one_line(completed.stdout) or "no message"
        raise RunError(f"sbatch failed (exit {completed.returncode}): {message}")
    return parse_job_id(completed.stdout)


def parse_job_id(parsable_output: str) -> str:
    """The job id from `sbatch --parsable` output (`JOBID` or `JOBID;CLUSTER`); RunError otherwise."""
    first_line = parsable_output.strip().split("\n", 1)[0]
    job_id = first_line.split(";", 1)[0].strip()
    if not re.fullmatch(r"[0-9]+", job_id):
        raise RunError(f"sbatch printed no job id: {_one_line(parsable_output) or 'nothing'}")
    return job_id


def _one_line(text: str) -> str:
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())
