from __future__ import annotations

from aiperf_hpc.endpoints.sse import SseEvent, parse_sse


def test_single_chunk_with_two_events() -> None:
    events = parse_sse([(100, b"data: a\n\ndata: b\n\n")])
    assert events == [SseEvent(100, "a"), SseEvent(100, "b")]


def test_event_split_across_three_chunks_takes_time_of_first_chunk() -> None:
    chunks = [(10, b"da"), (20, b"ta: hel"), (30, b"lo\n\n")]
    assert parse_sse(chunks) == [SseEvent(10, "hello")]


def test_each_event_gets_the_chunk_holding_its_first_byte() -> None:
    chunks = [(1, b"data: x\n\nda"), (2, b"ta: y\n"), (3, b"\ndata: z\n\n")]
    assert parse_sse(chunks) == [SseEvent(1, "x"), SseEvent(1, "y"), SseEvent(3, "z")]


def test_event_starting_exactly_at_a_chunk_boundary() -> None:
    chunks = [(1, b"data: x\n\n"), (2, b"data: y\n\n")]
    assert parse_sse(chunks) == [SseEvent(1, "x"), SseEvent(2, "y")]


def test_empty_chunks_are_ignored_for_timing() -> None:
    chunks = [(1, b""), (2, b"data: x\n\n"), (3, b""), (4, b"data: y\n\n")]
    assert parse_sse(chunks) == [SseEvent(2, "x"), SseEvent(4, "y")]


def test_no_chunks_and_only_empty_chunks() -> None:
    assert parse_sse([]) == []
    assert parse_sse([(1, b""), (2, b"")]) == []


def test_crlf_line_endings() -> None:
    assert parse_sse([(5, b"data: a\r\n\r\ndata: b\r\n\r\n")]) == [SseEvent(5, "a"), SseEvent(5, "b")]


def test_cr_line_endings() -> None:
    assert parse_sse([(5, b"data: a\r\rdata: b\r\r")]) == [SseEvent(5, "a"), SseEvent(5, "b")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # Were the \r and \n two line ends, the \n would be a blank line and end the event early.
    chunks = [(1, b"data: a\r"), (2, b"\ndata: b\r"), (3, b"\n\r\n")]
    assert parse_sse(chunks) == [SseEvent(1, "a\nb")]


def test_mixed_line_endings() -> None:
    assert parse_sse([(1, b"data: a\rdata: b\r\ndata: c\n\r\n")]) == [SseEvent(1, "a\nb\nc")]


def test_multi_line_data_is_joined_with_newline() -> None:
    assert parse_sse([(1, b"data: line1\ndata: line2\ndata:\ndata: line4\n\n")]) == [
        SseEvent(1, "line1\nline2\n\nline4")
    ]


def test_only_one_space_after_colon_is_removed() -> None:
    assert parse_sse([(1, b"data:x\n\ndata:  y\n\n")]) == [SseEvent(1, "x"), SseEvent(1, " y")]


def test_field_without_colon_has_empty_value() -> None:
    assert parse_sse([(1, b"data\n\n")]) == [SseEvent(1, "")]


def test_comments_are_ignored_and_do_not_set_the_event_time() -> None:
    chunks = [(1, b": keep-alive\n"), (2, b":\n\n"), (3, b": ping\ndata: x\n\n")]
    assert parse_sse(chunks) == [SseEvent(3, "x")]


def test_event_field_is_recorded_and_reset_between_events() -> None:
    events = parse_sse([(1, b"event: error\ndata: {}\n\ndata: next\n\n")])
    assert events == [SseEvent(1, "{}", "error"), SseEvent(1, "next", None)]


def test_event_field_line_sets_event_time() -> None:
    assert parse_sse([(1, b"event: delta\n"), (2, b"data: x\n\n")]) == [SseEvent(1, "x", "delta")]


def test_unknown_fields_id_and_retry_are_ignored() -> None:
    assert parse_sse([(1, b"id: 7\nretry: 100\nfoo: bar\ndata: x\n\n")]) == [SseEvent(1, "x")]


def test_event_without_data_is_not_emitted() -> None:
    assert parse_sse([(1, b"event: ping\n\nid: 3\n\n\n\ndata: x\n\n")]) == [SseEvent(1, "x")]


def test_trailing_event_without_blank_line_is_emitted() -> None:
    assert parse_sse([(1, b"data: a\n\n"), (2, b"data: [DONE]\n")]) == [
        SseEvent(1, "a"),
        SseEvent(2, "[DONE]"),
    ]


def test_trailing_line_without_line_end_is_emitted() -> None:
    assert parse_sse([(1, b"data: a\n\n"), (2, b"data: [DO"), (3, b"NE]")]) == [
        SseEvent(1, "a"),
        SseEvent(2, "[DONE]"),
    ]


def test_utf8_character_split_across_chunks() -> None:
    snowman = "\u2603".encode()  # 3 bytes
    chunks = [(1, b"data: a" + snowman[:1]), (2, snowman[1:2]), (3, snowman[2:] + b"b\n\n")]
    assert parse_sse(chunks) == [SseEvent(1, "a\u2603b")]


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert parse_sse([(1, b"data: a\xffb\n\n")]) == [SseEvent(1, "a\ufffdb")]


def test_leading_byte_order_mark_is_skipped() -> None:
    assert parse_sse([(1, b"\xef\xbb\xbfdata: x\n\n")]) == [SseEvent(1, "x")]


def test_many_events_one_byte_per_chunk() -> None:
    raw = b"".join(b"data: %d\n\n" % i for i in range(50))
    chunks = [(i, raw[i : i + 1]) for i in range(len(raw))]
    events = parse_sse(chunks)
    assert [e.data for e in events] == [str(i) for i in range(50)]
    offsets = [raw.index(b"data: %d\n" % i) for i in range(50)]
    assert [e.perf_ns for e in events] == offsets
