"""Process-level helpers for service processes: parent-death signal, process name, logging set-up."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys

PARENT_PID_ENV = "AIPERF_HPC_PARENT_PID"
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


def _prctl(option: int, value: int | bytes) -> None:
    """Linux prctl, from the C library the interpreter is linked with (no `find_library`, which runs
    ldconfig in a subprocess); elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def set_parent_death_signal() -> None:
    """SIGTERM this process when its parent dies. Safe to use as a `preexec_fn`: the setting
    survives exec."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def set_process_name(name: str) -> None:
    """Name this process in /proc/PID/comm (what `ps -o comm`, `top` and `pgrep` show; 15 bytes):
    forked services would otherwise all carry the CLI's name."""
    _prctl(_PR_SET_NAME, name.encode()[:15])


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies, so a SIGKILLed controller or worker
    manager leaves no orphan. Elsewhere (or when prctl is missing) the controller-silence limit of
    `runtime.service` is the fallback."""
    set_parent_death_signal()
    expected_parent = os.environ.get(PARENT_PID_ENV)
    if expected_parent is not None and os.getppid() != int(expected_parent):
        # The parent died between fork and prctl: nobody would ever stop us.
        raise SystemExit(1)


def raise_open_file_limit() -> None:
    """Lift the soft limit on open files to the hard limit: every in-flight request holds a socket,
    and thousands of concurrent streams need more than the usual soft limit of 1024."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def configure_logging(service_id: str, level: str = "INFO") -> None:
    """Log to stderr, each line naming the process; replaces what a forked process inherited."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s {service_id} %(levelname)s %(name)s: %(message)s",
        force=True,
    )
