"""What a run exposes: no secret in any artifact, log or output; no world-writable artifact; a private
socket directory; a mock server that listens on loopback only."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.harness import CLI, cli_process, mock_server, new_tag, processes_tagged, run_cli, wait_for

pytestmark = pytest.mark.integration

PROFILE = ["profile", "-m", "mock-model"]
LISTEN = "0A"  # the TCP state of a listening socket in /proc/net/tcp


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The umask the CLI subprocess inherits."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def test_planted_secrets_appear_in_no_artifact_log_or_output(tmp_path: Path) -> None:
    api_key = f"sk-PLANTED-{uuid.uuid4().hex}"
    bearer = f"PLANTED2-{uuid.uuid4().hex}"
    # Errors and faults too: their messages and samples are written to records, exports and logs.
    with mock_server("--error-rate", "0.2", "--fault", "disconnect=0.2", "--fault", "malformed=0.2") as server:
        args = [*PROFILE, "-u", server.url, "--streaming", "--request-count", "30", "--concurrency", "3"]
        args += ["--api-key", api_key, "--header", f"Authorization: Bearer {bearer}", "--header", f"X-Key: {bearer}"]
        run = run_cli(args, tmp_path / "art")
    assert run.returncode == 0, run.stderr
    files = [path for path in run.artifact_dir.rglob("*") if path.is_file()]
    assert {"profile_export.json", "records.jsonl", "inputs.json"} <= {path.name for path in files}
    assert any(path.parent.name == "logs" for path in files)
    for secret in (api_key, bearer):
        assert secret not in run.stdout + run.stderr
        leaking = [str(path) for path in files if secret.encode() in path.read_bytes()]
        assert leaking == []


def test_no_artifact_is_world_writable_whatever_the_umask(tmp_path: Path) -> None:
    with mock_server() as server, umask(0):
        run = run_cli([*PROFILE, "-u", server.url, "--request-count", "5"], tmp_path / "art")
    assert run.returncode == 0, run.stderr
    paths = [run.artifact_dir, *run.artifact_dir.rglob("*")]
    assert len(paths) > 5
    writable = [str(path) for path in paths if path.stat().st_mode & stat.S_IWOTH]
    assert writable == []


def test_the_run_socket_directory_is_private(tmp_path: Path) -> None:
    private_tmp = tmp_path / "tmp"  # the run's own TMPDIR: its socket directory is the only entry
    private_tmp.mkdir()
    tag = new_tag()
    with mock_server("--ttft-ms", "50") as server, umask(0):
        args = [*PROFILE, "-u", server.url, "--request-count", "40", "--concurrency", "1"]
        with cli_process(args, tmp_path / "art", tag, extra_env={"TMPDIR": str(private_tmp)}) as process:
            wait_for(lambda: any(private_tmp.iterdir()), 60, "the run's socket directory")
            (socket_dir,) = private_tmp.iterdir()
            mode = stat.S_IMODE(socket_dir.stat().st_mode)
            _, stderr = process.communicate(timeout=60)
    assert mode == 0o700, oct(mode)
    assert process.returncode == 0, stderr
    wait_for(lambda: not processes_tagged(tag), 10, "every child process to end")


def listening_addresses(port: int) -> list[str]:
    """Hex local addresses of the TCP sockets (IPv4 and IPv6) listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == LISTEN:
                found.append(address)
    return found


def test_the_mock_server_listens_on_loopback_by_default() -> None:
    with mock_server() as server:
        port = int(server.url.rsplit(":", 1)[1])
        addresses = listening_addresses(port)
    assert server.url.startswith("http://127.0.0.1:")
    assert addresses == ["0100007F"]  # 127.0.0.1 in /proc's little-endian hex; no IPv6 socket


def test_a_submitted_job_script_never_holds_the_api_key(tmp_path: Path) -> None:
    api_key = f"sk-PLANTED-{uuid.uuid4().hex}"
    args = ["submit", "--dry-run", "--nodes", "1", "--workers-per-node", "1", "--time", "00:10:00"]
    args += ["-m", "mock-model", "-u", "http://10.0.0.1:8000", "--api-key", api_key, "--request-count", "5"]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--request-count 5" in done.stdout  # the other options are in the script; only the key is not
    assert api_key not in done.stdout + done.stderr
