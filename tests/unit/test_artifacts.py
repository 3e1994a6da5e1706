"""artifacts: one name per file, and what a new run removes before it starts."""

from __future__ import annotations

import ast
from pathlib import Path

from aiperf_hpc import artifacts

PACKAGE = Path(__file__).resolve().parents[2] / "aiperf_hpc"

NAMES = {name: value for name, value in vars(artifacts).items() if name.isupper() and isinstance(value, str)}

# What one `profile` run writes into its artifact dir, beyond what it removes at its own end (.keys/).
RUN_OUTPUTS = {
    artifacts.RECORDS_FILE,
    artifacts.RUN_CONFIG_FILE,
    artifacts.PROFILE_EXPORT_FILE,
    artifacts.PROFILE_EXPORT_CSV_FILE,
    artifacts.SLICES_JSON_FILE,
    artifacts.SLICES_CSV_FILE,
    artifacts.INPUTS_FILE,
    artifacts.SERVER_METRICS_FILE,
    artifacts.SPOOL_FILE,
    artifacts.LOGS_DIR,
}
# What others put into a run's directory: it must survive the run that starts there.
WRITTEN_BY_OTHERS = {
    artifacts.SBATCH_SCRIPT_FILE,
    artifacts.SBATCH_SERVER_LOG,
    artifacts.SERVICE_RUN_LOG,
    artifacts.SERVER_LOG,
    artifacts.REPORT_FILE,
    artifacts.PLOTS_DIR,
}


def test_every_name_is_unique() -> None:
    values = list(NAMES.values())
    assert len(values) == len(set(values)), sorted(values)


def test_names_are_plain_file_names() -> None:
    for name, value in NAMES.items():
        assert value and "/" not in value and value.strip() == value, name


def test_a_new_run_removes_each_file_of_a_previous_run() -> None:
    assert set(artifacts.REMOVED_BY_NEW_RUN) == RUN_OUTPUTS
    assert len(artifacts.REMOVED_BY_NEW_RUN) == len(RUN_OUTPUTS)


def test_a_new_run_keeps_what_others_wrote() -> None:
    assert not WRITTEN_BY_OTHERS & set(artifacts.REMOVED_BY_NEW_RUN)


def test_a_process_log_is_named_by_its_id() -> None:
    assert artifacts.log_file_name("worker-3") == "worker-3.log"


def test_artifacts_is_a_leaf() -> None:
    tree = ast.parse((PACKAGE / "artifacts.py").read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {name for name in imported if name and name.startswith("aiperf_hpc")}
