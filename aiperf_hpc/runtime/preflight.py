"""Fail fast, before any process starts, when nothing listens at the server's address."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from aiperf_hpc.errors import RunError


async def check_reachable(url: str, timeout_s: float = 5.0) -> None:
    """Open (and close) one TCP connection to the URL's host and port; raise `RunError` if refused."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except asyncio.TimeoutError:
        raise RunError(f"cannot reach the server at {host}:{port}: no answer within {timeout_s:g} s") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RunError(f"cannot reach the server at {host}:{port}: {reason} (is it running?)") from None
    writer.close()
    with contextlib.suppress(asyncio.TimeoutError, OSError):
        await asyncio.wait_for(writer.wait_closed(), timeout_s)
