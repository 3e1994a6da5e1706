"""Local client groups: `aiperf-hpc profile` subprocesses of the service, and their end.

Each run is its own session (a Ctrl-C in the service's terminal reaches only the service, which
then stops the runs in order) and gets SIGTERM when the service dies (`set_parent_death_signal`),
so even a SIGKILLed service leaves no run behind; SIGTERM makes the profile write partial results.
Linux ties that signal to the forking thread, so `start` must be called on the event loop's (main)
thread, never from an executor.

A process is known by pid *and* start time (`/proc/PID/stat` field 22, in clock ticks since boot):
after a restart the service adopts a run only when both match, so a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aiperf_hpc.api_key import API_KEY_ENV, move_api_key_to_env
from aiperf_hpc.artifacts import SERVICE_RUN_LOG
from aiperf_hpc.errors import RunError
from aiperf_hpc.runtime.aio import poll_until
from aiperf_hpc.runtime.process import set_parent_death_signal

_POLL_INTERVAL_S = 0.05


@dataclass
class LocalProcess:
    """A run's profile process; `popen` is None for one adopted after a restart (not our child)."""

    pid: int
    start_ticks: int | None
    popen: subprocess.Popen[bytes] | None

    def ended(self) -> tuple[bool, int | None]:
        """(ended, exit code); the code is None when unknown (an adopted process). A signal death
        reads as 128 + signal, as a shell reports it."""
        if self.popen is not None:
            code = self.popen.poll()
            if code is None:
                return False, None
            return True, code if code >= 0 else 128 - code
        return not process_alive(self.pid, self.start_ticks), None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (another program may take it before the run does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it does not exist (or not on Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name in (...) may contain spaces
    return int(fields[19])  # field 22 overall; fields[0] is field 3


def process_alive(pid: int, start_ticks: int | None) -> bool:
    """True when `pid` runs, is not a zombie, and (when known) started at `start_ticks`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


class LocalRuns:
    """The profile processes this service watches, by client-group id."""

    def __init__(self) -> None:
        self._processes: dict[str, LocalProcess] = {}

    def start(self, group_id: str, command: list[str], run_dir: Path) -> LocalProcess:
        """Start `command` (see `profile_command`) with its output in `run_dir/SERVICE_RUN_LOG`. Raises RunError."""
        command, key_env = move_api_key_to_env(command)  # never on a command line that `ps` shows
        env = {name: value for name, value in os.environ.items() if name != API_KEY_ENV} | key_env
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            with (run_dir / SERVICE_RUN_LOG).open("ab") as log_file:
                popen = subprocess.Popen(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=set_parent_death_signal,
                )
        except OSError as exc:
            raise RunError(f"cannot start the profile: {exc.strerror or exc}") from None
        process = LocalProcess(popen.pid, process_start_ticks(popen.pid), popen)
        self._processes[group_id] = process
        return process

    def adopt(self, group_id: str, pid: int, start_ticks: int | None) -> bool:
        """Watch a run started by an earlier service, if it still runs; False when it is gone."""
        if start_ticks is None or not process_alive(pid, start_ticks):
            return False
        self._processes[group_id] = LocalProcess(pid, start_ticks, None)
        return True

    def ended(self, group_id: str) -> tuple[bool, int | None]:
        """(ended, exit code) as `LocalProcess.ended`; a run not watched here counts as ended, code unknown."""
        process = self._processes.get(group_id)
        if process is None:
            return True, None
        done = process.ended()
        if done[0]:
            del self._processes[group_id]
        return done

    def terminate(self, group_id: str) -> bool:
        """SIGTERM the run (it writes partial results); False when it is not running."""
        process = self._processes.get(group_id)
        if process is None or not process_alive(process.pid, process.start_ticks):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        return True

    async def stop_all(self, grace_s: float) -> list[str]:
        """SIGTERM every run, wait up to `grace_s` for them to end, then SIGKILL the rest (each run's
        own children die with it). Returns what had to be killed. The runs stay listed for `ended`."""
        for group_id in list(self._processes):
            self.terminate(group_id)
        if await self._wait_all(grace_s):
            return []
        forced = []
        for group_id, process in self._running():
            forced.append(f"client group {group_id} (pid {process.pid}) killed after {grace_s:g} s")
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        await self._wait_all(5.0)
        return forced

    def _running(self) -> list[tuple[str, LocalProcess]]:
        return [(group_id, process) for group_id, process in self._processes.items() if not process.ended()[0]]

    async def _wait_all(self, timeout_s: float) -> bool:
        return await poll_until(lambda: not self._running(), timeout_s, _POLL_INTERVAL_S)


def profile_command(argv: list[str], run_dir: Path, *, metrics_port: int) -> list[str]:
    """The profile's command line: the body's options plus what the service sets."""
    own = ["--launcher", "local", "--artifact-dir", str(run_dir), "--metrics-port", str(metrics_port), "--ui", "none"]
    return [sys.executable, "-m", "aiperf_hpc.cli", "profile", *argv, *own]
