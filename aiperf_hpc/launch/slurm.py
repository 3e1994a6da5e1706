"""Slurm launcher (a `launch.launcher.Launcher`): the workers are the tasks of one `srun` step.

Inside an allocation every worker is a task of one step over the placement's nodes (the command is
`core.placement.srun_worker_command`; each task names itself worker-<SLURM_PROCID>). The step is a
local process of the local launcher this one wraps, named `SRUN_STEP`, with its output in
`logs/workers-srun.log`; so is anything else started through this launcher. The step's exit loses
every worker at once; one task cannot be ended alone, and srun's `--kill-on-bad-exit=0` keeps one
dead worker from ending the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiperf_hpc.core.placement import Placement, srun_worker_command
from aiperf_hpc.launch.local import LocalLauncher

log = logging.getLogger(__name__)

SRUN_STEP = "workers-srun"  # the process id (and log file name) of the srun step holding every worker


class SlurmLauncher:
    def __init__(self, local: LocalLauncher, placement: Placement, *, python: str, overlap: bool) -> None:
        """`python`: the interpreter each task runs on its node; `overlap`: pass srun `--overlap`."""
        self._local = local
        self._placement = placement
        self._python = python
        self._overlap = overlap
        self._worker_ids: list[str] = []

    def start(self, service_type: str, service_id: str, control_address: str) -> None:
        self._local.start(service_type, service_id, control_address)

    def start_workers(self, worker_ids: Sequence[str], control_address: str) -> None:
        """Start the step; `worker_ids` are the ids its tasks take (worker-0 ... worker-N-1)."""
        command = self.srun_command(control_address)
        log.info("starting the workers: %s", " ".join(command))
        self._worker_ids = list(worker_ids)
        self._local.start_command(SRUN_STEP, command)

    def srun_command(self, control_address: str) -> list[str]:
        """The `srun` command line of the workers' step."""
        return srun_worker_command(
            self._placement, python=self._python, control_address=control_address, overlap=self._overlap
        )

    def newly_exited(self) -> list[tuple[str, int]]:
        return self._local.newly_exited()

    def lost_workers(self, process_id: str) -> list[str]:
        """The step's end loses every worker; any other process is lost alone."""
        return list(self._worker_ids) if process_id == SRUN_STEP else [process_id]

    def kill_worker(self, worker_id: str) -> None:
        # A task of the step is no process of this launcher's: only a local process of that id is ended.
        self._local.kill_worker(worker_id)

    def log_tail(self, process_id: str, lines: int = 5) -> str:
        return self._local.log_tail(process_id, lines)

    async def stop_all(self, timeout_s: float) -> list[str]:
        return await self._local.stop_all(timeout_s)
