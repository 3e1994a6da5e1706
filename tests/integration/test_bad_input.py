"""Bad input, table-driven: each case runs the real CLI in a subprocess and expects one line naming the
problem, exit code 2 (usage: the options or the input are wrong) or 1 (runtime: the run could not go on),
never a traceback and never a hang (every subprocess has a timeout).

Placeholders in the arguments: `{tmp}` is the test's directory (holding the files of `_write_inputs`),
`{dead}` a URL where nothing listens, `{live}` the URL of a running mock server (which serves only the
model `mock-model` and answers 404 for any other).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.harness import CLI, MockServer, mock_server, run_cli

pytestmark = pytest.mark.integration

USAGE, RUNTIME = 2, 1
ERROR_PREFIX = "aiperf-hpc: error: "


@dataclass(frozen=True)
class Case:
    """`args` follow `aiperf-hpc`. `alone`: the error is the only line on stderr (refused before the
    run printed anything). `env`: variables set for this case (every SLURM_* variable is cleared).
    `artifact_dir`: the --artifact-dir the harness adds to `profile` and `submit`."""

    name: str
    args: list[str]
    message: str
    code: int = USAGE
    alone: bool = True
    env: dict[str, str] = field(default_factory=dict)
    artifact_dir: str = "{tmp}/artifacts"


def profile(*args: str) -> list[str]:
    return ["profile", "-m", "mock-model", "-u", "{dead}", *args]


def submit(
    *args: str,
    nodes: str = "1",
    time: str = "00:10:00",
    profile_args: tuple[str, ...] = ("-m", "x", "-u", "http://s:8000"),
) -> list[str]:
    return [
        "submit",
        f"--nodes={nodes}",
        "--workers-per-node=1",
        f"--time={time}",
        *args,
        "--dry-run",
        "--",
        *profile_args,
    ]


FAKE_ALLOCATION = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node[1-2]", "SLURM_NTASKS": "2"}
TRACE = ("--custom-dataset-type", "mooncake_trace")
SINGLE = ("--custom-dataset-type", "single_turn")

PROFILE_CASES = [
    # conflicting or out-of-range options
    Case("count-and-duration", profile("--request-count", "5", "--benchmark-duration", "3"), "cannot be used together"),
    Case("concurrency-0", profile("--concurrency", "0"), "--concurrency values must be positive, got 0"),
    Case("rate-negative", profile("--request-rate", "-1"), "--request-rate values must be positive, got -1"),
    Case("rate-infinite", profile("--request-rate", "inf"), "invalid --request-rate: Input should be a finite number"),
    Case(
        "burstiness-without-gamma",
        profile("--request-rate", "5", "--burstiness", "0.5"),
        "needs --request-rate-mode gamma",
    ),
    Case(
        "gamma-without-rate", profile("--request-rate-mode", "gamma"), "--request-rate-mode gamma needs --request-rate"
    ),
    Case("isl-0", profile("--isl", "0"), "invalid --isl: Input should be greater than or equal to 1"),
    Case("osl-stddev-negative", profile("--osl-stddev", "-1"), "invalid --osl-stddev"),
    Case("cancellation-rate-150", profile("--request-cancellation-rate", "150"), "invalid --request-cancellation-rate"),
    Case(
        "fixed-schedule-and-rate",
        profile("--fixed-schedule", "--request-rate", "5"),
        "--fixed-schedule and --request-rate",
    ),
    Case("fixed-schedule-without-file", profile("--fixed-schedule"), "--fixed-schedule replays the timestamps"),
    Case("speedup-without-fixed-schedule", profile("--fixed-schedule-speedup", "2"), "need --fixed-schedule"),
    Case(
        "warmup-count-and-duration",
        profile("--warmup-request-count", "3", "--warmup-duration", "2"),
        "--warmup-request-count and --warmup-duration",
    ),
    Case(
        "prefix-pool-without-length",
        profile("--prompt-prefix-pool-size", "4"),
        "--prompt-prefix-pool-size and --prompt-prefix-length go together",
    ),
    Case("goodput-without-value", profile("--goodput", "ttft"), "--goodput: 'ttft' is not name:value"),
    Case("goodput-unknown-metric", profile("--goodput", "unknown_metric:5"), "unknown metric 'unknown_metric'"),
    Case("goodput-negative", profile("--goodput", "request_latency:-3"), "'request_latency:-3' needs a value > 0"),
    Case("goodput-empty", profile("--goodput", ""), "--goodput is empty"),
    Case(
        "concurrency-list-not-numbers",
        profile("--concurrency", "1,x"),
        "--concurrency expects a number or a comma-separated list",
    ),
    Case(
        "sweep-both",
        profile("--concurrency", "1,2", "--request-rate", "1,2"),
        "sweep one of --concurrency and --request-rate",
    ),
    Case("random-seed-negative", profile("--random-seed", "-1"), "invalid --random-seed"),
    Case("count-beyond-64-bits", profile("--request-count", str(2**70)), "does not fit in a signed 64-bit integer"),
    Case("empty-model", ["profile", "-m", "", "-u", "{dead}"], "invalid --model: expected a model name"),
    # the OS gives argv bytes that are not UTF-8 to Python as lone surrogates, which JSON cannot carry
    Case(
        "model-not-utf8",
        ["profile", "-m", "bad\udcff", "-u", "{dead}"],
        "invalid --model: 'bad\\udcff' is not valid UTF-8",
    ),
    Case("api-key-with-line-break", profile("--api-key", "sk-1\nX-Evil: 1"), "invalid --api-key"),
    Case("header-injection", profile("--header", "X-Trace:a\r\nX-Evil: 1"), "contains a line break"),
    Case("header-bad-name", profile("--header", "Bad Name:1"), "'Bad Name' is not a valid header name"),
    Case("unknown-option", profile("--no-such-option"), "--no-such-option"),
    # endpoint and URL
    Case("unknown-endpoint-type", profile("--endpoint-type", "rerank"), 'Invalid value "rerank" for --endpoint-type'),
    Case("url-ftp", ["profile", "-m", "m", "-u", "ftp://host/x"], "must be an http:// or https:// URL"),
    Case("url-no-host", ["profile", "-m", "m", "-u", "http://"], "must be an http:// or https:// URL with a host"),
    Case("url-port-too-big", ["profile", "-m", "m", "-u", "http://127.0.0.1:99999"], "--url has an invalid port"),
    Case("url-port-0", ["profile", "-m", "m", "-u", "http://127.0.0.1:0"], "--url has an invalid port"),
    Case("url-port-not-a-number", ["profile", "-m", "m", "-u", "http://127.0.0.1:abc"], "--url has an invalid port"),
    # input files
    Case(
        "input-file-without-type", profile("--input-file", "{tmp}/ok.jsonl"), "--input-file needs --custom-dataset-type"
    ),
    Case(
        "conversation-num-with-file",
        profile("--conversation-num", "3", "--input-file", "{tmp}/ok.jsonl", *SINGLE),
        "--conversation-num makes synthetic conversations",
    ),
    Case(
        "input-missing", profile("--input-file", "{tmp}/missing.jsonl", *SINGLE), "{tmp}/missing.jsonl does not exist"
    ),
    Case("input-directory", profile("--input-file", "{tmp}", *SINGLE), "{tmp} is a directory, not a file"),
    Case(
        "input-not-utf8",
        profile("--input-file", "{tmp}/latin1.jsonl", *SINGLE),
        "latin1.jsonl is not UTF-8 text (byte 13)",
    ),
    Case(
        "input-bad-json-line-3",
        profile("--input-file", "{tmp}/bad_line3.jsonl", *SINGLE),
        "bad_line3.jsonl:3: invalid JSON",
    ),
    Case(
        "input-not-an-object",
        profile("--input-file", "{tmp}/array.jsonl", *SINGLE),
        "array.jsonl:1: expected a JSON object, got [1,2]",
    ),
    Case("input-empty", profile("--input-file", "{tmp}/empty.jsonl", *SINGLE), "empty.jsonl has no entries"),
    Case(
        "input-unknown-field",
        profile("--input-file", "{tmp}/typo.jsonl", *SINGLE),
        "typo.jsonl:1: unknown field 'output_lenght'",
    ),
    Case(
        "input-huge-integer",
        profile("--input-file", "{tmp}/huge.jsonl", *SINGLE),
        "huge.jsonl:1: 'output_length' must be a positive integer",
    ),
    Case(
        "trace-unordered",
        profile("--fixed-schedule", "--input-file", "{tmp}/unordered.jsonl", *TRACE),
        "unordered.jsonl:2: 'timestamp' 50 is before the previous line's 100",
    ),
    Case(
        "trace-negative",
        profile("--fixed-schedule", "--input-file", "{tmp}/negative.jsonl", *TRACE),
        "negative.jsonl:1: 'timestamp' must be a non-negative number",
    ),
    Case(
        "trace-blocks-mismatch",
        profile("--input-file", "{tmp}/blocks.jsonl", *TRACE),
        "does not fit 2 'hash_ids' blocks of 512 tokens",
    ),
    Case(
        "fixed-schedule-no-timestamps",
        profile("--fixed-schedule", "--input-file", "{tmp}/ok.jsonl", *SINGLE),
        "--fixed-schedule needs timestamps",
    ),
    Case(
        "sharegpt-not-an-array",
        profile("--input-file", "{tmp}/ok.jsonl", "--public-dataset", "sharegpt"),
        "expected a JSON array of conversations",
    ),
    Case(
        "tokenizer-dir-without-json",
        profile("--tokenizer", "{tmp}/tokenizer_dir"),
        "the directory has no tokenizer.json",
    ),
    Case("tokenizer-missing-path", profile("--tokenizer", "{tmp}/no_tokenizer"), "no such file or directory"),
    Case(
        "artifact-dir-is-a-file",
        profile(),
        "is a file, not a directory",
        alone=False,
        artifact_dir="{tmp}/ok.jsonl",
    ),
    # Slurm
    Case("slurm-outside-allocation", profile("--launcher", "slurm"), "--launcher slurm needs a Slurm allocation"),
    Case(
        "slurm-more-nodes-than-allocated",
        profile("--launcher", "slurm", "--nodes", "3"),
        "--nodes 3 but the allocation has 2 nodes",
        env=FAKE_ALLOCATION,
    ),
    Case(
        "slurm-more-workers-than-tasks",
        profile("--launcher", "slurm", "--workers-per-node", "4"),
        "but the allocation has 2 tasks",
        env=FAKE_ALLOCATION,
    ),
    # runtime: the options are fine, the server is not
    Case(
        "nothing-listening",
        profile("--request-count", "2"),
        "cannot reach the server at 127.0.0.1",
        code=RUNTIME,
        alone=False,
    ),
    Case(
        "wrong-model",
        ["profile", "-m", "no-such-model", "-u", "{live}", "--request-count", "3"],
        "all 3 requests failed; 3 with http_error:404: The model `no-such-model` does not exist",
        code=RUNTIME,
        alone=False,
    ),
    Case(
        "wrong-model-streaming",
        ["profile", "-m", "gpt-5", "-u", "{live}", "--streaming", "--request-count", "2"],
        "2 with http_error:404",
        code=RUNTIME,
        alone=False,
    ),
]

SUBMIT_CASES = [
    Case("submit-time-not-a-time", submit(time="abc"), "--time must be HH:MM:SS or D-HH:MM:SS, got 'abc'"),
    Case("submit-time-hours-after-days", submit(time="1-24:00:00"), "hours must be 0..23"),
    Case("submit-time-zero", submit(time="00:00:00"), "--time must be more than 00:00:00"),
    Case("submit-nodes-0", submit(nodes="0"), "--nodes must be at least 1, got 0"),
    Case(
        "submit-server-port",
        submit("--server-command", "vllm serve x", "--server-port", "70000", profile_args=("-m", "x")),
        "--server-port must be 1..65535",
    ),
    Case("submit-no-server", submit(profile_args=("-m", "x")), "give --url"),
    Case("submit-reserved-sbatch", submit("--extra-sbatch=--nodes=3"), "submit writes --nodes itself"),
    Case(
        "submit-bad-profile-option",
        submit(profile_args=("-m", "x", "-u", "http://s:8000", "--concurrency", "0")),
        "--concurrency values must be positive",
    ),
    Case(
        "submit-conflicting-profile-options",
        submit(profile_args=("-m", "x", "-u", "http://s:8000", "--request-count", "5", "--benchmark-duration", "3")),
        "cannot be used together",
    ),
]

MOCK_SERVER_CASES = [
    Case("mock-port-70000", ["mock-server", "--port", "70000"], "--port must be 0..65535, got 70000"),
    Case("mock-error-rate-2", ["mock-server", "--error-rate", "2"], "invalid --error-rate"),
    Case("mock-error-status-200", ["mock-server", "--error-status", "200"], "invalid --error-status"),
    Case("mock-ttft-negative", ["mock-server", "--ttft-ms", "-1"], "invalid --ttft-ms"),
    Case("mock-output-tokens-0", ["mock-server", "--output-tokens", "0"], "invalid --output-tokens"),
    Case(
        "mock-error-status-list-200",
        ["mock-server", "--error-status", "429,200"],
        "invalid --error-status: an error status is 400..599, got 200",
    ),
    Case("mock-error-status-not-a-list", ["mock-server", "--error-status", "429;503"], "--error-status expects"),
    Case("mock-fault-unknown-kind", ["mock-server", "--fault", "explode=0.1"], "--fault expects KIND=FRACTION"),
    Case("mock-fault-without-fraction", ["mock-server", "--fault", "stall"], "got 'stall'"),
    Case(
        "mock-fault-fraction-2",
        ["mock-server", "--fault", "stall=2"],
        "invalid --fault: the fraction of 'stall' must be in (0, 1], got 2.0",
    ),
    Case(
        "mock-fault-twice",
        ["mock-server", "--fault", "stall=0.1", "--fault", "stall=0.2"],
        "--fault names the same kind twice",
    ),
    Case(
        "mock-fractions-above-1",
        ["mock-server", "--error-rate", "0.6", "--fault", "stall=0.5"],
        "--error-rate and the --fault fractions add up to 1.1, more than 1",
    ),
]

CASES = PROFILE_CASES + SUBMIT_CASES + MOCK_SERVER_CASES


def test_the_table_tries_at_least_30_distinct_bad_inputs() -> None:
    assert len({case.name for case in CASES}) == len(CASES) >= 30


@pytest.fixture(scope="module")
def live_server() -> Iterator[MockServer]:
    with mock_server() as server:
        yield server


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    _write_inputs(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def outside_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLURM_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_refused_with_one_line(
    case: Case, inputs: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    live = request.getfixturevalue("live_server").url if any("{live}" in arg for arg in case.args) else ""
    dead = _dead_url()
    args = [_fill(arg, inputs, dead, live) for arg in case.args]
    returncode, stdout, stderr = _run(args, Path(_fill(case.artifact_dir, inputs, dead, live)))
    message = _fill(case.message, inputs, dead, live)

    assert "Traceback" not in stderr + stdout
    errors = [line for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, stderr
    assert message in errors[0], stderr
    assert returncode == case.code, stderr
    if case.alone:
        assert stderr.strip() == errors[0], stderr


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_input_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.jsonl"
    path.write_text('{"text": "hi"}\n')
    path.chmod(0)
    args = ["profile", "-m", "mock-model", "-u", _dead_url(), "--input-file", str(path), *SINGLE]
    run = run_cli(args, tmp_path / "a", timeout_s=30)
    assert run.returncode == USAGE, run.stderr
    assert f"cannot read {path}: Permission denied" in run.stderr


def _run(args: list[str], artifact_dir: Path) -> tuple[int, str, str]:
    """`profile` and `submit` go through the harness (which adds --artifact-dir); the mock server takes
    no artifact dir. Both are bounded: a case that is wrongly accepted fails on the timeout."""
    if args[0] != "mock-server":
        run = run_cli(args, artifact_dir, timeout_s=60)
        return run.returncode, run.stdout, run.stderr
    try:
        done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"mock-server {args} was accepted and kept running: {exc.stderr!r}") from exc
    return done.returncode, done.stdout, done.stderr


def _fill(text: str, tmp: Path, dead_url: str, live_url: str) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{dead}", dead_url).replace("{live}", live_url)


def _dead_url() -> str:
    """A loopback URL where nothing listens: a port the kernel just handed out and took back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _write_inputs(directory: Path) -> None:
    files: dict[str, bytes] = {
        "ok.jsonl": b'{"text": "hello there"}\n',
        "latin1.jsonl": b'{"text": "caf\xe9"}\n',  # byte 13 is Latin-1, not UTF-8
        "bad_line3.jsonl": b'{"text": "a"}\n\n{"text": "b",\n{"text": "c"}\n',
        "array.jsonl": b"[1, 2]\n",
        "empty.jsonl": b"\n  \n",
        "typo.jsonl": b'{"text": "a", "output_lenght": 5}\n',
        "huge.jsonl": b'{"text": "a", "output_length": 1e30}\n',
        "unordered.jsonl": b'{"timestamp": 100, "input_length": 10}\n{"timestamp": 50, "input_length": 10}\n',
        "negative.jsonl": b'{"timestamp": -5, "input_length": 10}\n',
        "blocks.jsonl": b'{"input_length": 10, "hash_ids": [1, 2]}\n',
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    (directory / "tokenizer_dir").mkdir()
