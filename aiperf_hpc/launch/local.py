"""Local launcher (a `launch.launcher.Launcher`): starts service processes on this machine and ends
every one of them.

A service is forked from the fork server when the launcher has one (`launch.fork_server`: the
imports are paid once), else started as `python -m aiperf_hpc.services ...`; any other command (the
`srun` step of the workers, see `launch.slurm`) is always a subprocess. Either way a child has its own session, so a
Ctrl-C in the terminal reaches only the controller, which then runs the ordered shutdown; it dies
with the process that started it (see `runtime.process.die_with_parent` and the fork server's
docstring); its stdout and stderr go to `<log_dir>/<process_id>.log`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from aiperf_hpc.artifacts import log_file_name
from aiperf_hpc.errors import RunError
from aiperf_hpc.launch.fork_server import FORK_SERVER_ID, ForkServer
from aiperf_hpc.runtime.aio import poll_until
from aiperf_hpc.runtime.process import PARENT_PID_ENV, set_parent_death_signal

log = logging.getLogger(__name__)

_POLL_INTERVAL_S = 0.01


class ProcessHandle(Protocol):
    """What the launcher needs of a child: `subprocess.Popen`, or `fork_server.ForkedChild`."""

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


Spawn = Callable[[list[str], dict[str, str], IO[bytes]], ProcessHandle]
"""Starts `argv` with this environment, its stdout and stderr into the open log file."""


def spawn_subprocess(argv: list[str], env: dict[str, str], log_file: IO[bytes]) -> ProcessHandle:
    """A subprocess in its own session that dies with this process. Raises FileNotFoundError."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=set_parent_death_signal,  # also for commands that are not ours (srun)
    )


@dataclass
class ServiceProcess:
    service_id: str
    process: ProcessHandle
    log_path: Path


class LocalLauncher:
    def __init__(
        self, log_dir: Path, fork_server: ForkServer | None = None, *, spawn: Spawn = spawn_subprocess
    ) -> None:
        self._log_dir = log_dir
        self._fork_server = fork_server
        self._spawn = spawn
        self._processes: dict[str, ServiceProcess] = {}
        self._reported: set[str] = set()

    def start(self, service_type: str, service_id: str, control_address: str) -> None:
        argv = [service_type, service_id, control_address]
        if self._fork_server is None:
            command = [sys.executable, "-m", "aiperf_hpc.services", *argv]
            self.start_command(service_id, command, {PARENT_PID_ENV: str(os.getpid())})
            return
        log_path = self._log_path(service_id)
        process = ServiceProcess(service_id, self._fork_server.start_child(service_id, argv, log_path), log_path)
        self._processes[service_id] = process

    def start_workers(self, worker_ids: Sequence[str], control_address: str) -> None:
        """Each worker a process of its own, named by its id."""
        for worker_id in worker_ids:
            self.start("worker", worker_id, control_address)

    def start_command(self, process_id: str, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        """Start any command (a service, or the `srun` step of the workers) under this launcher's care."""
        log_path = self._log_path(process_id)
        env = {k: v for k, v in os.environ.items() if k != PARENT_PID_ENV} | (extra_env or {})
        try:
            with log_path.open("ab") as log_file:
                handle = self._spawn(argv, env, log_file)
        except FileNotFoundError:
            raise RunError(f"cannot start {argv[0]!r}: not found on PATH") from None
        self._processes[process_id] = ServiceProcess(process_id, handle, log_path)

    def newly_exited(self) -> list[tuple[str, int]]:
        """Processes that ended since the last call (each reported once), with their return codes.
        The fork server this launcher started comes first: its end takes its children with it."""
        exited = []
        server_code = None if self._fork_server is None else self._fork_server.server_exit_code()
        if server_code is not None and FORK_SERVER_ID not in self._reported:
            self._reported.add(FORK_SERVER_ID)
            exited.append((FORK_SERVER_ID, server_code))
        for service_id, process in self._processes.items():
            code = process.process.poll()
            if code is not None and service_id not in self._reported:
                self._reported.add(service_id)
                exited.append((service_id, code))
        return exited

    def lost_workers(self, process_id: str) -> list[str]:
        """A worker is a process of its own: its end loses it alone."""
        return [process_id]

    def kill_worker(self, worker_id: str) -> None:
        process = self._processes.get(worker_id)
        if process is not None and process.process.poll() is None:
            process.process.kill()

    def log_tail(self, process_id: str, lines: int = 5) -> str:
        try:
            text = (self._log_dir / log_file_name(process_id)).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    async def stop_all(self, timeout_s: float) -> list[str]:
        """Wait up to `timeout_s` for every process to exit, then terminate, then kill.

        Returns what had to be forced, so the caller can log what the shutdown abandoned.
        """
        forced: list[str] = []
        if not await self._wait_all(timeout_s):
            for process in self._running():
                forced.append(f"{process.service_id} terminated")
                process.process.terminate()
            if not await self._wait_all(2.0):
                for process in self._running():
                    forced.append(f"{process.service_id} killed")
                    process.process.kill()
                await self._wait_all(2.0)
        return forced

    def _log_path(self, process_id: str) -> Path:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return self._log_dir / log_file_name(process_id)

    def _running(self) -> list[ServiceProcess]:
        return [p for p in self._processes.values() if p.process.poll() is None]

    async def _wait_all(self, timeout_s: float) -> bool:
        return await poll_until(lambda: not self._running(), timeout_s, _POLL_INTERVAL_S)
