"""A recipe's inference server as a local process, for `aiperf-hpc run`.

The server gets its own session and process group (a Ctrl-C in the terminal reaches only us, and
stopping it reaches every process it started), its stdout and stderr go to one log file, and it
gets SIGTERM if we die (Linux). `wait_healthy` polls its health URL until it answers 2xx, bounded;
`stop` sends the group SIGTERM, then SIGKILL after a grace, and is safe to call on every exit path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from aiperf_hpc.errors import RunError
from aiperf_hpc.runtime.process import set_parent_death_signal

HEALTH_POLL_INTERVAL_S = 0.5
PROBE_TIMEOUT_S = 5.0
STOP_GRACE_S = 15.0
KILL_WAIT_S = 5.0
_EXIT_POLL_INTERVAL_S = 0.05


def answers(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a GET of `url` answers 2xx; no proxy: the server is this machine or a cluster node."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class LocalServer:
    """One started server process group. Create with `start`."""

    def __init__(self, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self._popen = popen
        self._pgid = popen.pid  # a session leader leads its own process group
        self.log_path = log_path

    @classmethod
    def start(cls, argv: list[str], env: Mapping[str, str], log_path: Path) -> LocalServer:
        """Start `argv` with this environment plus `env`, output to `log_path` (truncated).
        RunError when the program cannot be started."""
        try:
            with log_path.open("wb") as log_file:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **env},
                    start_new_session=True,
                    preexec_fn=set_parent_death_signal,
                )
        except OSError as exc:
            raise RunError(f"cannot start the server {argv[0]!r}: {exc.strerror or exc}") from None
        return cls(popen, log_path)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def wait_healthy(self, health_urls: list[str], timeout_s: float) -> float:
        """Poll each of `health_urls` until it answers 2xx; return the seconds it took. RunError when
        the server exits first or `timeout_s` passes (the caller shows the log's tail)."""
        started_s = time.monotonic()
        deadline_s = started_s + timeout_s
        waiting = list(health_urls)
        while True:
            code = self._popen.poll()
            if code is not None:
                raise RunError(f"the server exited with code {code} before {waiting[0]} answered")
            left_s = deadline_s - time.monotonic()
            if left_s <= 0:
                raise RunError(f"{waiting[0]} did not answer within {timeout_s:g} s")
            if answers(waiting[0], timeout_s=min(PROBE_TIMEOUT_S, left_s)):
                waiting.pop(0)
                if not waiting:
                    return time.monotonic() - started_s
                continue
            time.sleep(min(HEALTH_POLL_INTERVAL_S, max(deadline_s - time.monotonic(), 0)))

    def stop(self, grace_s: float = STOP_GRACE_S) -> bool:
        """SIGTERM to the whole group, SIGKILL to what is left after `grace_s`. SIGINT and SIGTERM
        to us are held back meanwhile, so a second Ctrl-C cannot leave the server running.
        Returns False if something was still there after the SIGKILL wait."""
        with _signals_held():
            self._signal_group(signal.SIGTERM)
            if self._wait_gone(grace_s):
                return True
            self._signal_group(signal.SIGKILL)
            return self._wait_gone(KILL_WAIT_S)

    def log_tail(self, lines: int) -> list[str]:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._pgid, signum)

    def _wait_gone(self, timeout_s: float) -> bool:
        """Whether the process and every other member of its group are gone within `timeout_s`."""
        deadline_s = time.monotonic() + timeout_s
        while True:
            self._popen.poll()  # reap our child; a zombie still counts as a member of its group
            try:
                os.killpg(self._pgid, 0)
            except ProcessLookupError:
                return True
            if time.monotonic() >= deadline_s:
                return False
            time.sleep(_EXIT_POLL_INTERVAL_S)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
