"""The Launcher protocol: how the controller and the worker manager start processes and learn that
they ended.

Two implementations: `launch.local.LocalLauncher` runs every process as a child on this machine;
`launch.slurm.SlurmLauncher` runs the workers as the tasks of one `srun` step over the allocation's
nodes, and everything else (that step included) through a local launcher. The controller starts the
managers through the launcher it is given; the worker manager picks one for the workers.

Every method is called from the event loop of the process that owns the launcher, and only
`stop_all` waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Launcher(Protocol):
    def start(self, service_type: str, service_id: str, control_address: str) -> None:
        """Start one service process that registers at `control_address`. Raises RunError when its
        command cannot be started."""

    def start_workers(self, worker_ids: Sequence[str], control_address: str) -> None:
        """Start the workers, which register at `control_address` under these ids. Raises RunError
        when a command cannot be started."""

    def newly_exited(self) -> list[tuple[str, int]]:
        """The processes (by process id) that ended since the last call, each reported once, with
        their return codes."""

    def lost_workers(self, process_id: str) -> list[str]:
        """The ids of the workers lost when the process `process_id` (from `newly_exited`) ended."""

    def kill_worker(self, worker_id: str) -> None:
        """End a worker that stopped sending heartbeats, so it cannot come back with stale credits,
        where it is a process of its own; nothing otherwise. Does not wait."""

    def log_tail(self, process_id: str, lines: int = 5) -> str:
        """The last `lines` lines of the process's log, "" when there is none."""

    async def stop_all(self, timeout_s: float) -> list[str]:
        """Wait up to `timeout_s` for every process to exit, then terminate, then kill (each bounded).
        Returns what had to be forced, one line each, for the caller to log."""
