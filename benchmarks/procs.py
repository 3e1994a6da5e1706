"""Child processes of the benchmarks: the mock server, and bounded tool runs with memory sampling.

Every child runs in its own session (process group), so a run that outlives its bound is stopped
with its descendants: SIGTERM to the group, a bounded wait, then SIGKILL. The open-file soft limit is
raised to the hard limit in every child: 10,000 streams hold 10,000 sockets on each side.

Memory is the sum over the child and all its descendants, sampled from /proc every 100 ms: RSS
(what `ps` shows; pages shared between forked processes are counted once per process) and PSS
(shared pages split between their users, so the sum is the real footprint).
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

MEMORY_SAMPLE_INTERVAL_S = 0.1
_STOP_GRACE_S = 5.0
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_MOCK_START_TIMEOUT_S = 30.0
# Runs the mock server in a child; argv[1] is the MockServerConfig as JSON.
_MOCK_CODE = (
    "import sys\n"
    "from aiperf_hpc.mock_server import MockServerConfig, run_mock_server\n"
    "run_mock_server(MockServerConfig.model_validate_json(sys.argv[1]), host='127.0.0.1', port=0)\n"
)


@dataclass(frozen=True)
class Completed:
    """How one bounded child run ended. `spawn_wall_ns` and `spawn_monotonic_s` are `time.time_ns()`
    and `time.monotonic()` just before the spawn (the mock server logs arrivals on the monotonic
    clock, which all processes of a machine share); the memory peaks are None when memory was not
    sampled."""

    returncode: int
    timed_out: bool
    wall_s: float
    spawn_wall_ns: int
    spawn_monotonic_s: float
    peak_rss_bytes: int | None
    peak_pss_bytes: int | None
    log_path: Path

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def raise_open_file_limit() -> None:
    """Lift the soft open-file limit to the hard one (used as the children's `preexec_fn`)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_bounded(
    argv: Sequence[str],
    log_path: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    sample_memory: bool = False,
) -> Completed:
    """Run `argv` to its end or for at most `timeout_s`, stdout and stderr to `log_path`.

    A run past its bound is stopped with its whole process group and reported `timed_out` with
    return code -9 or the signal's. Raises OSError when the program cannot be started.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        spawn_wall_ns = time.time_ns()
        spawn_monotonic_s = time.monotonic()
        started_s = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=raise_open_file_limit,
        )
        peak_rss = 0
        peak_pss = 0
        deadline_s = started_s + timeout_s
        timed_out = False
        while True:
            if sample_memory:
                rss, pss = tree_memory_bytes(process.pid)
                peak_rss = max(peak_rss, rss)
                peak_pss = max(peak_pss, pss)
            remaining_s = deadline_s - time.perf_counter()
            if remaining_s <= 0:
                timed_out = True
                stop_group(process)
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=min(remaining_s, MEMORY_SAMPLE_INTERVAL_S) if sample_memory else remaining_s)
                break
        wall_s = time.perf_counter() - started_s
    return Completed(
        returncode=process.returncode if process.returncode is not None else -9,
        timed_out=timed_out,
        wall_s=wall_s,
        spawn_wall_ns=spawn_wall_ns,
        spawn_monotonic_s=spawn_monotonic_s,
        peak_rss_bytes=peak_rss if sample_memory else None,
        peak_pss_bytes=peak_pss if sample_memory else None,
        log_path=log_path,
    )


def stop_group(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group `process` leads, wait a bounded time, then SIGKILL it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=_STOP_GRACE_S)
    # Descendants that left the group's leader behind still belong to the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def tree_memory_bytes(root_pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over `root_pid` and its descendants; processes that end while
    being read count as zero."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        ppid = _parent_pid(int(entry.name))
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry.name))
    rss = 0
    pss = 0
    pending = [root_pid]
    while pending:
        pid = pending.pop()
        rss += _rss_bytes(pid)
        pss += _pss_bytes(pid)
        pending.extend(children.get(pid, ()))
    return rss, pss


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    # The command name (2nd field) may hold spaces and parentheses: parse after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def _pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return 0
    return 0


class MockServer:
    """The project's mock server in a child process on 127.0.0.1 (a free port), for one `with`."""

    def __init__(self, config: Mapping[str, Any], log_path: Path) -> None:
        self._config_json = orjson.dumps(dict(config)).decode()
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> MockServer:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [sys.executable, "-c", _MOCK_CODE, self._config_json],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_path.open("wb"),
            start_new_session=True,
            preexec_fn=raise_open_file_limit,
        )
        try:
            self.url = _read_listening_url(self._process, _MOCK_START_TIMEOUT_S)
        except BaseException:
            stop_group(self._process)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            stop_group(self._process)
            if self._process.stdout is not None:
                self._process.stdout.close()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def get_json(self, path: str) -> Any:
        """GET `path` (e.g. '/mock/stats') and decode the JSON answer."""
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return orjson.loads(response.read())

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/mock/stats/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def _read_listening_url(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The URL of the server's 'mock-server listening on URL' line. Raises RuntimeError on exit or timeout."""
    assert process.stdout is not None
    deadline_s = time.perf_counter() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        buffered = b""
        while b"\n" not in buffered:
            remaining_s = deadline_s - time.perf_counter()
            if remaining_s <= 0 or not selector.select(remaining_s):
                raise RuntimeError(f"the mock server did not start within {timeout_s:.0f} s")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the mock server exited with code {process.wait(timeout=5)}")
            buffered += chunk
    line = buffered.split(b"\n", 1)[0].decode()
    prefix = "mock-server listening on "
    if not line.startswith(prefix):
        raise RuntimeError(f"unexpected first line from the mock server: {line!r}")
    return line[len(prefix) :].strip()


@contextlib.contextmanager
def mock_server(config: Mapping[str, Any], log_path: Path) -> Iterator[MockServer]:
    with MockServer(config, log_path) as server:
        yield server
