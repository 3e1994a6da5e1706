"""The real `aiperf-hpc serve` in a subprocess, and a small JSON client for its API (loopback only).

Shared by tests/integration/test_service_api.py and tests/slurm/test_service_slurm.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.harness import CLI, tagged_env, wait_for

API = "/api/v1/client-groups"
STOP_TIMEOUT_S = 60.0
ENDED = ("completed", "failed", "cancelled")


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Service:
    url: str
    process: subprocess.Popen[str]
    token: str | None = None

    def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, raw: bytes | None = None
    ) -> Reply:
        """One request; `token` overrides the service's own (pass "" to send none)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        bearer = self.token if token is None else token
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, _decode(response.read(), response.headers), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Reply(error.code, _decode(error.read(), error.headers), dict(error.headers))

    def create(self, options: dict[str, Any], **fields: Any) -> dict[str, Any]:
        reply = self.call("POST", API, {"launcher": "local", "options": options, **fields})
        assert reply.status == 201, reply.body
        created: dict[str, Any] = reply.body
        return created

    def group(self, group_id: str) -> dict[str, Any]:
        reply = self.call("GET", f"{API}/{group_id}")
        assert reply.status == 200, reply.body
        found: dict[str, Any] = reply.body
        return found

    def wait_status(self, group_id: str, statuses: tuple[str, ...], timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll GET until the client group's status is one of `statuses`; fail naming the last one seen."""
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.group(group_id))
            if seen["status"] in ENDED and seen["status"] not in statuses:
                raise AssertionError(f"client group ended {seen['status']}, expected {statuses}: {seen}")
            return seen["status"] in statuses

        wait_for(reached, timeout_s, f"client group {group_id} to be {'/'.join(statuses)}", interval_s=0.2)
        return seen

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Signal the service and wait for it; kill it (and fail) if it outlives STOP_TIMEOUT_S."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"the service did not stop within {STOP_TIMEOUT_S} s") from None


def _decode(data: bytes, headers: Any) -> Any:
    if "json" in (headers.get("Content-Type") or ""):
        return json.loads(data)
    return data.decode()


@contextmanager
def running_service(
    state_dir: Path, *, tag: str, token: str | None = None, cwd: Path | None = None, extra: tuple[str, ...] = ()
) -> Iterator[Service]:
    """`aiperf-hpc serve --port 0` on `state_dir`, its log beside it; stopped with SIGTERM (then killed) at the end."""
    env = tagged_env(tag)
    if token is not None:
        env["AIPERF_HPC_SERVICE_TOKEN"] = token
    log_path = state_dir.parent / f"{state_dir.name}-service.log"  # a file: a full pipe would block the service
    with log_path.open("a") as log_file:
        process = subprocess.Popen(
            [*CLI, "serve", "--port", "0", "--state-dir", str(state_dir), *extra],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            env=env,
            cwd=cwd,
        )
    service = None
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the address first; EOF if it died
        if "listening on" not in line:
            process.wait(10)
            raise AssertionError(f"the service did not start: {line!r} {log_path.read_text()}")
        service = Service(line.rsplit(" ", 1)[-1].strip(), process, token)
        yield service
    finally:
        if service is not None:
            service.stop()
        elif process.poll() is None:
            process.kill()
            process.wait(10)
