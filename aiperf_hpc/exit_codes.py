"""The only exit-code enum. `services.controller.decide_exit_code` is the only place that picks one."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    SUCCESS = 0
    RUN_FAILED = 1  # nothing succeeded, server unreachable, a service died
    USAGE = 2  # bad options or input
    INTERRUPTED = 130  # SIGINT (Ctrl-C); partial results written
    TERMINATED = 143  # SIGTERM (e.g. Slurm time limit); partial results written
