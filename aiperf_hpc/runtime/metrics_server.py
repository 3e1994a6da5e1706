"""The client's live /metrics endpoint (`--metrics-port`): a small aiohttp server on the controller's
event loop, no thread. Each `GET /metrics` answers what `render()` returns at that moment, as
Prometheus text; any other path is a 404.

One `MetricsServer` serves every run of a sweep, started and stopped with each run's event loop:
the port the first run bound (port 0: a free one) is the port of the next runs, so a scraper keeps
one URL. A port that cannot be bound is the user's to fix: `UsageError`, naming the option.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from aiperf_hpc.errors import UsageError
from aiperf_hpc.runtime.aio import bounded

STOP_TIMEOUT_S = 5.0


class MetricsServer:
    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """http://HOST:PORT/metrics; the port is the bound one once `start` has returned."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/metrics"

    async def start(self, render: Callable[[], bytes]) -> None:
        """Listen and serve `render()`; raises UsageError when the address cannot be bound."""

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

        listener = self._listen()
        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, listener).start()
        self._runner = runner
        self._port = int(listener.getsockname()[1])

    def _listen(self) -> socket.socket:
        """A listening socket on the first address `host` resolves to, so a name with several addresses
        (`localhost`) still gives one port."""
        try:
            family, _, _, _, address = socket.getaddrinfo(
                self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            return socket.create_server(address, family=family)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UsageError(f"--metrics-port {self._port}: cannot listen on {self._host}: {reason}") from None

    async def stop(self) -> None:
        """Stop listening and close open connections, within `STOP_TIMEOUT_S`."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await bounded(runner.cleanup(), STOP_TIMEOUT_S, "the metrics server to stop")
