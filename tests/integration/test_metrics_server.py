"""MetricsServer on a real loopback socket: what it serves, and the port a sweep keeps."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from aiperf_hpc.runtime.metrics_server import MetricsServer

pytestmark = pytest.mark.integration


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, "", b""


async def test_serves_the_latest_rendering_and_keeps_its_port_across_starts() -> None:
    loop = asyncio.get_running_loop()
    server = MetricsServer("127.0.0.1", 0)
    figures = [b"a 1\n"]
    await server.start(lambda: figures[-1])
    try:
        url = server.url
        status, content_type, body = await loop.run_in_executor(None, fetch, url)
        assert (status, body) == (200, b"a 1\n")
        assert content_type.startswith("text/plain")
        figures.append(b"a 2\n")
        assert (await loop.run_in_executor(None, fetch, url))[2] == b"a 2\n"
        assert (await loop.run_in_executor(None, fetch, url.replace("/metrics", "/other")))[0] == 404
    finally:
        await server.stop()
    await server.start(lambda: b"b 1\n")  # the next point of a sweep
    try:
        assert server.url == url
        assert (await loop.run_in_executor(None, fetch, url))[2] == b"b 1\n"
    finally:
        await server.stop()
