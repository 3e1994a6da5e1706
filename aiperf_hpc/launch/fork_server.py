"""The fork server: one process that has imported every service and forks each local service from itself.

Start-up is CPU-bound on imports: a fresh interpreter per service pays pydantic, zmq, uvloop, numpy and
aiohttp again, every process at once on the same cores. The fork server is a fork of the CLI process,
made before the CLI starts an event loop; it imports the service modules once, and each local service
is then a fork of it that is ready in milliseconds and shares those pages copy-on-write. Between two
preloaded modules it forks whoever asked meanwhile, so the services needed first (the `preload`
order) start while it still loads the others; a child forked early imports the rest itself.

    aiperf-hpc profile (controller) ─── owner connection ───┐
     └── fork-server                                         │  JSON lines over socket pairs
          ├── dataset, timing, records, worker_manager  <────┘  started for the owner
          └── worker-0 ... worker-N-1                   <─────  started for worker_manager, over the
                                                                connection it got when it was forked

Requests (client -> server): `{"start": ID, "argv": [...], "log": PATH, "env": {...}}`,
`{"signal": ID, "signum": N}`.
Notes (server -> client): `{"exited": ID, "code": N}`, N as `Popen.returncode` (-N: killed by signal N).

A forked child gets what `LocalLauncher` gives a subprocess: its own session (a Ctrl-C reaches only
the controller), stdin from /dev/null, stdout and stderr appended to its log, SIGTERM when its parent
(the fork server) dies, and in addition its own connection to the fork server (`FORK_SERVER_FD_ENV`).
Whoever asked for a child owns it: its exit is reported to that connection only, and when that
connection closes (its process ended or died) the server sends SIGTERM to the children it started, as
the parent-death signal did for a subprocess. When the owner's connection closes, the server ends
every child (SIGTERM, then SIGKILL after `STOP_GRACE_S`) and exits. The server itself gets SIGTERM
when the CLI dies, and its children then get theirs.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiperf_hpc.errors import RunError
from aiperf_hpc.runtime.process import PARENT_PID_ENV, configure_logging, set_parent_death_signal, set_process_name

log = logging.getLogger(__name__)

FORK_SERVER_ID = "fork-server"  # its log is logs/fork-server.log
FORK_SERVER_FD_ENV = "AIPERF_HPC_FORK_SERVER_FD"
STOP_GRACE_S = 2.0
_CLOSE_TIMEOUT_S = STOP_GRACE_S + 3.0
_WAIT_POLL_S = 0.01
_RECV_BYTES = 65536

ChildMain = Callable[[list[str]], int]


class ForkServer:
    """One process's connection to the fork server. The process that started the server (its owner)
    also reaps it. Not thread-safe; every method returns at once except `close()`."""

    def __init__(self, connection: socket.socket, server_pid: int | None) -> None:
        self._connection = connection
        self._server_pid = server_pid
        self._server_code: int | None = None
        self._buffer = b""
        self._exit_codes: dict[str, int] = {}
        self._hung_up = False

    @classmethod
    def start(cls, log_path: Path, child_main: ChildMain, preload: Sequence[str]) -> ForkServer | None:
        """Fork this process into a fork server whose children run `child_main(argv)` after it has
        imported `preload`. None when this process runs other Python threads, which a fork would
        leave half-copied; the caller then starts subprocesses instead. Raises RunError when the log
        cannot be opened."""
        if threading.active_count() > 1:
            return None
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise RunError(f"cannot write {log_path}: {exc.strerror or exc}") from None
        ours, theirs = socket.socketpair()
        _flush_stdio()
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the fork server; never returns
            code = 1
            try:
                ours.close()
                code = _Server(theirs, child_main).run(parent_pid, log_fd, preload)
            except BaseException:  # a fork must never return into the CLI's code
                traceback.print_exc()
            finally:
                _flush_stdio()
                os._exit(code)
        os.close(log_fd)
        theirs.close()
        return cls(ours, pid)

    @classmethod
    def inherited(cls) -> ForkServer | None:
        """The connection a child of the fork server was given, None in a process started otherwise.
        Call it once and keep the result: when it is closed or collected, the children it started end."""
        fd = os.environ.get(FORK_SERVER_FD_ENV)
        if fd is None:
            return None
        return cls(socket.socket(fileno=int(fd)), None)

    def start_child(self, child_id: str, argv: list[str], log_path: Path) -> ForkedChild:
        """Ask for a child running `child_main(argv)` with this process's environment as it is now
        (as a subprocess would get it); its exit is reported later (`exit_code`)."""
        env = {k: v for k, v in os.environ.items() if k not in (FORK_SERVER_FD_ENV, PARENT_PID_ENV)}
        self._request({"start": child_id, "argv": argv, "log": str(log_path), "env": env})
        return ForkedChild(self, child_id)

    def send_signal(self, child_id: str, signum: int) -> None:
        """Signal a child this connection started, unless it has ended (the server knows)."""
        self._request({"signal": child_id, "signum": signum})

    def exit_code(self, child_id: str) -> int | None:
        """The child's exit code once reported; -SIGTERM once the server is gone (it took the child
        with it); None while it runs."""
        self._read_notes()
        if child_id in self._exit_codes:
            return self._exit_codes[child_id]
        return -signal.SIGTERM if self._hung_up else None

    def server_exit_code(self) -> int | None:
        """The server's own exit code once it ended; always None for a connection it did not start."""
        if self._server_pid is not None and self._server_code is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self._server_pid, os.WNOHANG)
                if pid != 0:
                    self._server_code = os.waitstatus_to_exitcode(status)
        return self._server_code

    def close(self) -> None:
        """Hang up. The owner then waits (bounded) for the server to end every child and exit, and
        kills it when it does not."""
        self._connection.close()
        if self._server_pid is None:
            return
        deadline_s = time.monotonic() + _CLOSE_TIMEOUT_S
        while self.server_exit_code() is None:
            if time.monotonic() >= deadline_s:
                log.warning("the fork server did not exit within %g s; killing it", _CLOSE_TIMEOUT_S)
                os.kill(self._server_pid, signal.SIGKILL)
                os.waitpid(self._server_pid, 0)
                return
            time.sleep(_WAIT_POLL_S)

    def _request(self, request: dict[str, Any]) -> None:
        if self._hung_up:
            return
        try:
            # A few dozen bytes into an empty socket buffer: does not block in practice.
            self._connection.sendall(json.dumps(request).encode() + b"\n")
        except OSError:
            self._hung_up = True

    def _read_notes(self) -> None:
        while not self._hung_up:
            try:
                data = self._connection.recv(_RECV_BYTES, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._hung_up = True
                return
            self._buffer += data
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                note = json.loads(line)
                self._exit_codes[note["exited"]] = note["code"]


@dataclass
class ForkedChild:
    """A child of the fork server, with the part of `subprocess.Popen` that `LocalLauncher` uses."""

    server: ForkServer
    child_id: str

    def poll(self) -> int | None:
        return self.server.exit_code(self.child_id)

    def terminate(self) -> None:
        self.server.send_signal(self.child_id, signal.SIGTERM)

    def kill(self) -> None:
        self.server.send_signal(self.child_id, signal.SIGKILL)


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    buffer: bytes = b""
    children: dict[str, int] = field(default_factory=dict)  # child id -> pid, while it runs


class _Server:
    """The server's loop: single-threaded, reaping children on SIGCHLD through a wake-up socket."""

    def __init__(self, owner: socket.socket, child_main: ChildMain) -> None:
        self._owner = owner
        self._child_main = child_main
        self._selector = selectors.DefaultSelector()
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._clients: dict[socket.socket, _Client] = {}
        self._children: dict[int, tuple[_Client, str]] = {}  # pid -> (owner, child id)

    def run(self, parent_pid: int, log_fd: int, preload: Sequence[str]) -> int:
        os.setsid()  # like start_new_session: no terminal signal reaches the server or its children
        set_parent_death_signal()
        if os.getppid() != parent_pid:  # the CLI died before prctl: nobody would stop us
            return 1
        set_process_name(FORK_SERVER_ID)
        _redirect_stdio(log_fd)
        configure_logging(FORK_SERVER_ID, os.environ.get("AIPERF_HPC_LOG_LEVEL", "INFO"))
        for sock in (self._wakeup_r, self._wakeup_w):
            sock.setblocking(False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(self._wakeup_w.fileno())
        self._selector.register(self._wakeup_r, selectors.EVENT_READ)
        self._add_client(self._owner)
        for name in preload:
            if self._owner not in self._clients:
                break
            importlib.import_module(name)
            # Fork whoever asked meanwhile: a child started early imports what is not loaded yet itself,
            # beside the server importing the rest (the first services needed come first in `preload`).
            self._serve(timeout_s=0)
        while self._owner in self._clients:
            self._serve(timeout_s=None)
        self._end_children()
        return 0

    def _serve(self, timeout_s: float | None) -> None:
        """One round: reap the children that ended, answer the clients that wrote or hung up."""
        for key, _ in self._selector.select(timeout_s):
            if key.fileobj is self._wakeup_r:
                self._drain_wakeups()
                self._reap()
            elif key.fileobj in self._clients:  # not dropped earlier in this round
                self._on_readable(self._clients[key.fileobj])

    def _add_client(self, sock: socket.socket) -> _Client:
        client = _Client(sock)
        self._clients[sock] = client
        self._selector.register(sock, selectors.EVENT_READ)
        return client

    def _drop(self, client: _Client) -> None:
        """The client hung up: the children it started go with it."""
        self._selector.unregister(client.sock)
        client.sock.close()
        del self._clients[client.sock]
        for pid in client.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _on_readable(self, client: _Client) -> None:
        try:
            data = client.sock.recv(_RECV_BYTES)
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.buffer += data
        *lines, client.buffer = client.buffer.split(b"\n")
        for line in lines:
            request = json.loads(line)
            if "start" in request:
                self._fork(client, request["start"], request["argv"], request["env"], Path(request["log"]))
            elif "signal" in request:
                pid = client.children.get(request["signal"])
                if pid is not None:  # not yet reaped, so the pid is still this child's
                    os.kill(pid, request["signum"])
            else:
                log.error("unknown request %r", request)

    def _fork(self, client: _Client, child_id: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        try:
            log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            log.error("%s not started: cannot write %s: %s", child_id, log_path, exc.strerror or exc)
            self._note(client, child_id, 1)
            return
        ours, theirs = socket.socketpair()
        _flush_stdio()
        gc.freeze()  # the child's collections never walk (and so never copy) what is loaded now
        try:
            pid = os.fork()
        except OSError as exc:
            os.write(log_fd, f"{child_id} not started: fork failed: {exc.strerror or exc}\n".encode())
            for sock in (ours, theirs):
                sock.close()
            os.close(log_fd)
            self._note(client, child_id, 1)
            return
        if pid == 0:
            ours.close()
            self._become_child(theirs, log_fd, argv, env)
        os.close(log_fd)
        theirs.close()
        self._add_client(ours)
        client.children[child_id] = pid
        self._children[pid] = (client, child_id)

    def _become_child(self, connection: socket.socket, log_fd: int, argv: list[str], env: dict[str, str]) -> None:
        """In the new child: shed the server's state, then run `child_main`. Never returns."""
        code = 1
        try:
            server_pid = os.getppid()
            os.setsid()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self._selector.close()
            for sock in (self._wakeup_r, self._wakeup_w, *self._clients):
                sock.close()
            _redirect_stdio(log_fd)
            os.environ.clear()
            os.environ.update(env)
            os.environ[FORK_SERVER_FD_ENV] = str(connection.detach())  # `ForkServer.inherited()` owns it now
            os.environ[PARENT_PID_ENV] = str(server_pid)  # checked after prctl, as for a subprocess
            sys.argv = [sys.argv[0], *argv]
            code = self._child_main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # a fork must never return into the server's loop
            traceback.print_exc()
        finally:
            logging.shutdown()
            _flush_stdio()
            os._exit(code)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            client, child_id = self._children.pop(pid, (None, ""))
            if client is not None:
                del client.children[child_id]
                if client.sock in self._clients:
                    self._note(client, child_id, os.waitstatus_to_exitcode(status))

    def _note(self, client: _Client, child_id: str, code: int) -> None:
        with contextlib.suppress(OSError):  # a client that is gone is dropped when its EOF is read
            client.sock.sendall(json.dumps({"exited": child_id, "code": code}).encode() + b"\n")

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wakeup_r.recv(_RECV_BYTES):
                pass

    def _end_children(self) -> None:
        """The owner hung up: drop every client (each one's children get SIGTERM), SIGKILL what is
        left after the grace, reap all."""
        for client in list(self._clients.values()):
            self._drop(client)
        self._wait_children(STOP_GRACE_S)
        if self._children:
            log.warning("killing %s: still running %g s after SIGTERM", _ids(self._children), STOP_GRACE_S)
            for pid in self._children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._wait_children(STOP_GRACE_S)
        if self._children:
            log.error("could not reap %s", _ids(self._children))

    def _wait_children(self, timeout_s: float) -> None:
        deadline_s = time.monotonic() + timeout_s
        self._reap()
        while self._children and time.monotonic() < deadline_s:
            self._selector.select(deadline_s - time.monotonic())
            self._drain_wakeups()
            self._reap()


def _ids(children: dict[int, tuple[_Client, str]]) -> str:
    return ", ".join(child_id for _, child_id in children.values())


def _redirect_stdio(log_fd: int) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def _flush_stdio() -> None:
    """Empty Python's buffers before a fork or `os._exit`, so no output is written twice or lost."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
