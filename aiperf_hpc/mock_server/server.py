"""Running the mock server as a blocking process entry point on a uvloop event loop.

Once listening it prints one line, `mock-server listening on http://HOST:PORT` with the bound port, so
a parent that asked for port 0 can read where to connect. SIGINT and SIGTERM stop it cleanly.
The tests' `aiohttp.test_utils.TestServer` also cancels handlers on disconnect, so they see the same
behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import uvloop
from aiohttp import web

from aiperf_hpc.mock_server.app import create_app
from aiperf_hpc.mock_server.config import MockServerConfig

# How long shutdown waits for in-flight responses before aiohttp cancels their handlers.
_SHUTDOWN_TIMEOUT_S = 2.0
_LISTEN_BACKLOG = 4096


def run_mock_server(config: MockServerConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until SIGINT or SIGTERM, then return normally. Port 0 binds a free port.

    Raises OSError when the address cannot be bound.
    """
    # A SIGINT that arrives before the signal handlers are installed is still a requested stop.
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve(config, host, port))


async def _serve(config: MockServerConfig, host: str, port: int) -> None:
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_requested.set)

    # handler_cancellation: a client that disconnects ends its request at once, as vLLM aborts it,
    # so the in-flight truth never counts requests the client already gave up (cancellation runs).
    runner = web.AppRunner(
        create_app(config),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
        handler_cancellation=True,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=_LISTEN_BACKLOG)
        await site.start()
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        print(f"mock-server listening on http://{url_host}:{bound_port}", flush=True)
        # The server's whole lifetime: it runs until asked to stop, by design unbounded.
        await stop_requested.wait()
    finally:
        await runner.cleanup()
