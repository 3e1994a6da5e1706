"""A fake `launch.local.Spawn`: processes that run until a test ends them, no real command."""

from __future__ import annotations

from typing import IO

from aiperf_hpc.launch.local import ProcessHandle


class FakeProcess:
    """A process that runs until the test ends it, or until terminate or kill."""

    def __init__(self) -> None:
        self.code: int | None = None
        self.signals: list[str] = []

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        self.signals.append("terminate")
        self.code = -15

    def kill(self) -> None:
        self.signals.append("kill")
        self.code = -9


class FakeSpawn:
    def __init__(self) -> None:
        self.started: list[tuple[list[str], dict[str, str], str]] = []
        self.processes: list[FakeProcess] = []

    def __call__(self, argv: list[str], env: dict[str, str], log_file: IO[bytes]) -> ProcessHandle:
        self.started.append((argv, env, log_file.name))
        process = FakeProcess()
        self.processes.append(process)
        return process
