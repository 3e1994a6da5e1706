"""Local launcher: starts service processes on this machine and ends every one of them.

Children get their own session (`start_new_session`), so a Ctrl-C in the terminal reaches only the
controller, which then runs the ordered shutdown; they also die with their parent (see
`runtime.process.die_with_parent`). Each child's stderr goes to `<log_dir>/<service_id>.log`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aiperf_hpc.errors import RunError
from aiperf_hpc.runtime.process import PARENT_PID_ENV, set_parent_death_signal

log = logging.getLogger(__name__)

_POLL_INTERVAL_S = 0.05


@dataclass
class ServiceProcess:
    service_id: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    expected_exit: bool = False


class LocalLauncher:
    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._processes: dict[str, ServiceProcess] = {}
        self._reported: set[str] = set()

    def start(self, service_type: str, service_id: str, control_address: str) -> ServiceProcess:
        argv = [sys.executable, "-m", "aiperf_hpc.services", service_type, service_id, control_address]
        return self.start_command(service_id, argv, {PARENT_PID_ENV: str(os.getpid())})

    def start_command(
        self, process_id: str, argv: list[str], extra_env: dict[str, str] | None = None
    ) -> ServiceProcess:
        """Start any command (a service, or the `srun` step of the workers) under this launcher's care."""
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self._log_dir / f"{process_id}.log"
        env = {k: v for k, v in os.environ.items() if k != PARENT_PID_ENV} | (extra_env or {})
        try:
            with log_path.open("ab") as log_file:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    preexec_fn=set_parent_death_signal,  # also for commands that are not ours (srun)
                )
        except FileNotFoundError:
            raise RunError(f"cannot start {argv[0]!r}: not found on PATH") from None
        process = ServiceProcess(process_id, popen, log_path)
        self._processes[process_id] = process
        return process

    @property
    def service_ids(self) -> list[str]:
        return list(self._processes)

    def newly_exited(self) -> list[tuple[str, int]]:
        """Processes that ended since the last call (each reported once), with their return codes."""
        exited = []
        for service_id, process in self._processes.items():
            code = process.popen.poll()
            if code is not None and service_id not in self._reported:
                self._reported.add(service_id)
                exited.append((service_id, code))
        return exited

    def expect_exit(self, service_id: str) -> None:
        self._processes[service_id].expected_exit = True

    def kill(self, service_id: str) -> None:
        process = self._processes[service_id]
        if process.popen.poll() is None:
            process.popen.kill()

    def log_tail(self, service_id: str, lines: int = 5) -> str:
        try:
            text = self._processes[service_id].log_path.read_text(errors="replace")
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
                process.popen.terminate()
            if not await self._wait_all(2.0):
                for process in self._running():
                    forced.append(f"{process.service_id} killed")
                    process.popen.kill()
                await self._wait_all(2.0)
        return forced

    def _running(self) -> list[ServiceProcess]:
        return [p for p in self._processes.values() if p.popen.poll() is None]

    async def _wait_all(self, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._running():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(_POLL_INTERVAL_S)
        return True
