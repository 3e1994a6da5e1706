"""Scraping the server's Prometheus `/metrics` during a run (vLLM's metrics; see core.server_metrics).

Two parts, both over aiohttp with every `ClientTimeout` field set:

- `resolve_server_metrics`, in the CLI process before any service starts: probes each URL to
  scrape (the user's `--server-metrics-url`s, else `<--url>/metrics`) once and keeps those that
  answer 200 with Prometheus text. A URL that does not is dropped with one note line; the run never
  fails for it.
- `ServerMetricsScraper`, in the records manager's process: one scrape at `start()` (from
  `configure()`, so it precedes the first request), then one every `SCRAPE_INTERVAL_S` on absolute
  ticks (a tick missed while a slow scrape ran is skipped, not caught up), and a last one at
  `stop()` (on `Finalize`, after every record is in). All URLs are scraped concurrently; each scrape
  becomes one line of `server_metrics.jsonl`, written and flushed as it arrives. A failed scrape is
  a line with an `error`, never an exception: the run goes on without it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson

from aiperf_hpc.config import ENDPOINT_PATHS, RunConfig, ServerMetricsConfig
from aiperf_hpc.core.server_metrics import NotPrometheusText, parse_metrics_text
from aiperf_hpc.runtime.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

SCRAPE_INTERVAL_S = 1.0
SCRAPE_TIMEOUT = aiohttp.ClientTimeout(total=3.0, connect=2.0, sock_connect=2.0, sock_read=3.0)
_MAX_REASON_CHARS = 120


class ScrapeFailed(Exception):
    """A scrape that produced no values; the message says why, in a few words."""


def default_metrics_url(url: str) -> str:
    """`<server root>/metrics` for the server `--url` names (which may end in /v1 or an endpoint path)."""
    for path in (*ENDPOINT_PATHS.values(), "/v1"):
        if url.endswith(path):
            url = url[: -len(path)]
            break
    return f"{url.rstrip('/')}/metrics"


async def fetch_values(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """GET `url` and parse it (`core.server_metrics.parse_metrics_text`). Raises ScrapeFailed."""
    try:
        async with session.get(url) as response:
            if response.status != 200:
                raise ScrapeFailed(f"answered HTTP {response.status}")
            text = await response.text(errors="replace")
    except asyncio.TimeoutError:
        raise ScrapeFailed(f"no answer within {SCRAPE_TIMEOUT.total:g} s") from None
    except aiohttp.ClientError as exc:
        raise ScrapeFailed(f"{type(exc).__name__}: {exc}"[:_MAX_REASON_CHARS]) from None
    try:
        return parse_metrics_text(text)
    except NotPrometheusText as exc:
        raise ScrapeFailed(str(exc)[:_MAX_REASON_CHARS]) from None


async def resolve_server_metrics(config: RunConfig) -> tuple[RunConfig, list[str]]:
    """`config` with the URLs that answer Prometheus text (scraping disabled when none does), and
    one note for each URL left out."""
    wanted = config.server_metrics
    if not wanted.enabled:
        return config, []
    urls = wanted.urls or [default_metrics_url(config.endpoint.url)]
    async with aiohttp.ClientSession(timeout=SCRAPE_TIMEOUT) as session:
        outcomes = await asyncio.gather(*(_probe(session, url) for url in urls))
    kept = [url for url, reason in zip(urls, outcomes, strict=True) if reason is None]
    notes = [
        f"server metrics: {url} {reason}; not scraped"
        for url, reason in zip(urls, outcomes, strict=True)
        if reason is not None
    ]
    resolved = ServerMetricsConfig(enabled=bool(kept), urls=kept)
    return config.model_copy(update={"server_metrics": resolved}), notes


async def _probe(session: aiohttp.ClientSession, url: str) -> str | None:
    try:
        await fetch_values(session, url)
    except ScrapeFailed as exc:
        return str(exc)
    return None


class ServerMetricsScraper:
    """Scrapes `urls` into `path`; with no URLs every method does nothing. Event loop thread only."""

    def __init__(
        self, urls: list[str], path: Path, interval_s: float = SCRAPE_INTERVAL_S, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        """`clock.wall_ns` stamps each scrape (its start and its end)."""
        self.path = path
        self._clock = clock
        self._urls = list(urls)
        self._interval_s = interval_s
        self._active = False
        self._lock = asyncio.Lock()  # one scrape at a time, so stop()'s last scrape comes last
        self._failed: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._file: IO[bytes] | None = None

    async def start(self) -> None:
        """Open the file and the session and take the first scrape (the baseline)."""
        if not self._urls:
            return
        self._file = self.path.open("ab")
        self._session = aiohttp.ClientSession(timeout=SCRAPE_TIMEOUT)
        self._active = True
        async with self._lock:
            await self._scrape_all()

    async def scrape_loop(self) -> None:
        """Scrape every interval until `stop()`; then idle until the service's loops end."""
        loop = asyncio.get_running_loop()
        next_tick_s = loop.time() + self._interval_s
        while True:
            await asyncio.sleep(max(0.0, next_tick_s - loop.time()))
            if self._active:
                async with self._lock:
                    if self._active:
                        await self._scrape_all()
            now_s = loop.time()
            next_tick_s += self._interval_s
            if next_tick_s <= now_s:  # fell behind (a slow scrape): skip the missed ticks
                next_tick_s = now_s + self._interval_s

    async def stop(self) -> None:
        """Take the last scrape and stop scraping. Bounded by the scrape timeout."""
        if not self._active:
            return
        async with self._lock:
            self._active = False
            await self._scrape_all()

    async def close(self) -> None:
        self._active = False
        if self._session is not None:
            await self._session.close()
        if self._file is not None:
            self._file.close()

    async def _scrape_all(self) -> None:
        assert self._session is not None and self._file is not None
        lines = await asyncio.gather(*(self._scrape(self._session, url) for url in self._urls))
        self._file.write(b"".join(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE) for line in lines))
        self._file.flush()

    async def _scrape(self, session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
        started_wall_ns = self._clock.wall_ns()
        try:
            values = await fetch_values(session, url)
        except ScrapeFailed as exc:
            if url not in self._failed:
                self._failed.add(url)
                log.warning("scraping %s failed: %s (later failures are only counted)", url, exc)
            return {"url": url, "started_wall_ns": started_wall_ns, "wall_ns": self._clock.wall_ns(), "error": str(exc)}
        return {"url": url, "started_wall_ns": started_wall_ns, "wall_ns": self._clock.wall_ns(), "values": values}
