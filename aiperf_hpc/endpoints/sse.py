"""Server-sent events parsed from the raw, timestamped chunks a worker read off the socket.

The worker only appends `(perf_counter_ns, bytes)` pairs while a response streams in; this module turns
them into events afterwards, once per request, following the WHATWG event-stream rules:

- lines end with `\\n`, `\\r\\n` or `\\r`, and a `\\r\\n` split across two chunks is still one line end;
- a blank line ends an event; `data:` lines (one optional space after the colon) are joined with `\\n`;
- lines starting with `:` are comments; `event:` is recorded; `id:`, `retry:` and unknown fields are
  ignored; a field line without a colon is a field with an empty value;
- an event without any `data` line is not emitted;
- a leading UTF-8 byte order mark is skipped.

Unlike the spec, which drops an event that is not closed by a blank line when the stream ends, the
last event (and a last line without a line end) is emitted: a server that closes the connection right
after its final `data:` line still gets its data counted.

Bytes are joined before decoding, so a multi-byte character split across chunks decodes whole; line
ends are ASCII bytes that never occur inside a UTF-8 sequence, so splitting lines on bytes is safe.
Invalid UTF-8 becomes U+FFFD; parsing never raises.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event.

    `perf_ns` is the read time of the chunk holding the event's first byte, i.e. the first byte of its
    first field line. Comment lines (keep-alives) are not part of an event, so a comment sent long
    before the data does not make the event look early.
    """

    perf_ns: int
    data: str
    event: str | None = None


def parse_sse(chunks: Sequence[tuple[int, bytes]]) -> list[SseEvent]:
    """Parse every event in `chunks`, given in arrival order as `(perf_counter_ns, raw bytes)`."""
    starts: list[int] = []
    times_ns: list[int] = []
    offset = 0
    for perf_ns, raw in chunks:
        if raw:
            starts.append(offset)
            times_ns.append(perf_ns)
            offset += len(raw)
    if not starts:
        return []
    buf = b"".join(raw for _, raw in chunks)

    events: list[SseEvent] = []
    pos = len(_BOM) if buf.startswith(_BOM) else 0
    data_lines: list[bytes] = []
    event_type: bytes | None = None
    event_start = -1  # offset of the current event's first field line; -1 while none was seen

    for line in buf[pos:].splitlines(keepends=True):
        line_start = pos
        pos += len(line)
        content = line.rstrip(b"\r\n")
        if not content:
            if data_lines:
                events.append(_make_event(event_start, data_lines, event_type, starts, times_ns))
            data_lines = []
            event_type = None
            event_start = -1
            continue
        if content[0] == 0x3A:  # b":" starts a comment
            continue
        if event_start < 0:
            event_start = line_start
        if content.startswith(b"data: "):  # the common case, without partition's copies
            data_lines.append(content[6:])
            continue
        name, colon, value = content.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data_lines.append(value)
        elif name == b"event":
            event_type = value

    if data_lines:
        events.append(_make_event(event_start, data_lines, event_type, starts, times_ns))
    return events


def _make_event(
    start: int,
    data_lines: list[bytes],
    event_type: bytes | None,
    chunk_starts: list[int],
    chunk_times_ns: list[int],
) -> SseEvent:
    perf_ns = chunk_times_ns[bisect_right(chunk_starts, start) - 1]
    joined = data_lines[0] if len(data_lines) == 1 else b"\n".join(data_lines)
    data = joined.decode("utf-8", errors="replace")
    name = event_type.decode("utf-8", errors="replace") if event_type else None
    return SseEvent(perf_ns=perf_ns, data=data, event=name)
