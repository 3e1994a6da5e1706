"""Arrival stamps of response bytes: a real `aiohttp.StreamReader`, fed as aiohttp's protocol feeds
it, read as the worker reads it."""

from __future__ import annotations

import asyncio
import time
from typing import cast

import aiohttp
from aiohttp.base_protocol import BaseProtocol

from aiperf_hpc.runtime import arrivals
from aiperf_hpc.runtime.arrivals import _split, read_stamped


class _Connected:
    """The little of aiohttp's protocol a StreamReader uses: an open connection that never pauses."""

    connected = True

    def pause_reading(self, **_: object) -> None:
        pass

    def resume_reading(self, **_: object) -> None:
        pass


def new_reader() -> aiohttp.StreamReader:
    loop = asyncio.get_running_loop()
    return aiohttp.StreamReader(cast(BaseProtocol, _Connected()), limit=2**16, loop=loop)


async def test_pieces_read_together_keep_their_own_arrival_times() -> None:
    arrivals.install()
    arrivals.install()  # idempotent: wrapping twice would note every piece twice
    reader = new_reader()
    reading = asyncio.ensure_future(read_stamped(reader))
    await asyncio.sleep(0)  # ok: lets the reader start watching; not a wait for time to pass
    before_ns = time.perf_counter_ns()
    reader.feed_data(b"data: a\n\n")
    reader.feed_data(b"data: bb\n\n")  # fed before the reading task runs: one read returns both
    reader.feed_eof()
    stamped = await reading

    assert [data for _, data in stamped] == [b"data: a\n\n", b"data: bb\n\n"]
    first_ns, second_ns = (arrival for arrival, _ in stamped)
    assert before_ns <= first_ns <= second_ns
    assert id(reader) not in arrivals._watched  # the watch ends with the body


async def test_bytes_buffered_before_the_watch_read_as_arriving_no_later_than_what_follows() -> None:
    arrivals.install()
    reader = new_reader()
    reader.feed_data(b"early")  # came with the headers, before anyone watched
    reader.feed_eof()
    stamped = await read_stamped(reader)
    assert [data for _, data in stamped] == [b"early"]


def test_split_cuts_a_read_into_the_pieces_noted_and_refuses_what_does_not_add_up() -> None:
    assert _split(b"abcdef", [(10, 2), (20, 4)], read_ns=30) == [(10, b"ab"), (20, b"cdef")]
    assert _split(b"xxabcdef", [(10, 2), (20, 4)], read_ns=30) == [(10, b"xx"), (10, b"ab"), (20, b"cdef")]
    assert _split(b"abc", [], read_ns=30) == [(30, b"abc")]
    assert _split(b"ab", [(10, 2), (20, 4)], read_ns=30) == [(30, b"ab")]
