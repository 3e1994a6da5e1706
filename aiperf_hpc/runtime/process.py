"""Process-level helpers for service processes: parent-death signal and logging set-up."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys

PARENT_PID_ENV = "AIPERF_HPC_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def set_parent_death_signal() -> None:
    """SIGTERM this process when its parent dies (Linux prctl; elsewhere a no-op). Safe to use as a
    `preexec_fn`: the setting survives exec."""
    if not sys.platform.startswith("linux"):
        return
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies, so a SIGKILLed controller or worker
    manager leaves no orphan. Elsewhere (or when prctl is missing) the controller-silence limit of
    `runtime.service` is the fallback."""
    set_parent_death_signal()
    expected_parent = os.environ.get(PARENT_PID_ENV)
    if expected_parent is not None and os.getppid() != int(expected_parent):
        # The parent died between fork and prctl: nobody would ever stop us.
        raise SystemExit(1)


def configure_logging(service_id: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s {service_id} %(levelname)s %(name)s: %(message)s",
    )
