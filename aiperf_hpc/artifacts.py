"""Every file and directory name aiperf-hpc writes, in one place.

A run's artifact directory (`--artifact-dir`)::

    records.jsonl                 one line per request, appended as records arrive (the source of truth)
    run_config.json               the run's configuration and metadata, for `recompute`
    profile_export.json, .csv     the metric statistics
    profile_export_slices.json, .csv    the statistics per time window (`--slice-duration`)
    inputs.json                   the exact dataset sent
    server_metrics.jsonl          the scrapes of the servers' /metrics
    .records_columns.npy          the records service's column spool, gone when that service closes
    logs/<process id>.log         each process's stdout and stderr
    .keys/curve-keys.json         the run's CURVE keys (multi-node runs), removed when the run ends
    report.html, plots/           written later by `aiperf-hpc report`
    aiperf-hpc.sbatch             written by `submit` before the job runs the profile here
    server-<job id>.log           the server step of a submitted job
    service-run.log               the output of a profile started by the REST service

A sweep directory holds `sweep_summary.json` and `.csv`, `report.html` and `plots/`, and one run
directory per point; a recipe's artifact directory also holds its server's `server.log`. The REST
service's state directory holds its database and its lock file.

This module is a leaf: it imports nothing from aiperf_hpc, so every layer may import it.
"""

from __future__ import annotations

# --- a run's artifact directory -------------------------------------------------------------------

RECORDS_FILE = "records.jsonl"
RUN_CONFIG_FILE = "run_config.json"
PROFILE_EXPORT_FILE = "profile_export.json"
PROFILE_EXPORT_CSV_FILE = "profile_export.csv"
SLICES_JSON_FILE = "profile_export_slices.json"
SLICES_CSV_FILE = "profile_export_slices.csv"
INPUTS_FILE = "inputs.json"
SERVER_METRICS_FILE = "server_metrics.jsonl"
SPOOL_FILE = ".records_columns.npy"
LOGS_DIR = "logs"
KEYS_DIR = ".keys"
CURVE_KEYS_FILE = "curve-keys.json"  # inside KEYS_DIR
SBATCH_SCRIPT_FILE = "aiperf-hpc.sbatch"
SBATCH_SERVER_LOG = "server-$SLURM_JOB_ID.log"  # expanded by the job's shell
SERVICE_RUN_LOG = "service-run.log"  # a REST-started profile's output; no run removes it

# --- a run's or a sweep's directory, written by `report` -------------------------------------------

REPORT_FILE = "report.html"
PLOTS_DIR = "plots"

# --- a sweep's directory, and a recipe's -----------------------------------------------------------

SWEEP_SUMMARY_FILE = "sweep_summary.json"
SWEEP_SUMMARY_CSV_FILE = "sweep_summary.csv"
SERVER_LOG = "server.log"

# --- the REST service's state directory ------------------------------------------------------------

REST_DB_FILE = "service.sqlite3"
REST_LOCK_FILE = "service.lock"

REMOVED_BY_NEW_RUN = (
    RECORDS_FILE,
    RUN_CONFIG_FILE,
    PROFILE_EXPORT_FILE,
    PROFILE_EXPORT_CSV_FILE,
    INPUTS_FILE,
    LOGS_DIR,
    SERVER_METRICS_FILE,
    SPOOL_FILE,
    SLICES_JSON_FILE,
    SLICES_CSV_FILE,
)
"""What a new run in an existing artifact directory removes first, so nothing stale is mixed in with
its own files. The files others put there (the sbatch script, the logs of a submitted job's server
and of a REST-started run) stay, as do a previous `report`'s report.html and plots/."""


def log_file_name(process_id: str) -> str:
    """The name of a process's log file inside LOGS_DIR."""
    return f"{process_id}.log"
