"""Property-based tests: whatever bytes or values arrive, the parsers and validators that face them fail
only in their documented way (or not at all) and lose nothing.

- `parse_sse` never raises, whatever the bytes and their chunking, and gives back exactly the events of
  a well-formed stream, each timed by the chunk that held its first byte.
- `parse_stream` and `parse_body` never raise; problems come back as `error`.
- the codec raises only `ProtocolError` on any frame, and round-trips the hot-path messages.
- the config models raise only pydantic's `ValidationError`, and what they accept survives the wire.
- the goodput parser raises only `UsageError`.
"""

from __future__ import annotations

import contextlib
import itertools
from bisect import bisect_right
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import orjson
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aiperf_hpc.config import ClusterConfig, EndpointConfig, InputConfig, LoadConfig, MetricsConfig, RunConfig
from aiperf_hpc.endpoints.response import parse_body, parse_stream
from aiperf_hpc.endpoints.sse import SseEvent, parse_sse
from aiperf_hpc.errors import ProtocolError, UsageError
from aiperf_hpc.option_spec import GOODPUT_METRICS, parse_goodput_spec
from aiperf_hpc.protocol.codec import decode, encode
from aiperf_hpc.protocol.messages import CreditDrop, RecordBatch, RequestRecord

FAST = settings(max_examples=200, deadline=None)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
NON_NEGATIVE_INT64 = st.integers(min_value=0, max_value=2**63 - 1)

# --- strategies --------------------------------------------------------------------------------------


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[tuple[int, bytes]]:
    """`data` cut at arbitrary places (empty chunks included), stamped with increasing times."""
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [(1_000 + 10 * index, data[start:end]) for index, (start, end) in enumerate(itertools.pairwise(bounds))]


LINE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30)


@st.composite
def well_formed_stream(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, str, str | None]]]:
    """An SSE stream and, for each event, (offset of its first field line, data, event type)."""
    newline = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    stream = bytearray(b"\xef\xbb\xbf" if draw(st.booleans()) else b"")
    expected: list[tuple[int, str, str | None]] = []
    events = draw(st.lists(st.tuples(st.lists(LINE_TEXT, min_size=1, max_size=4), st.none() | LINE_TEXT), max_size=8))
    for number, (data_lines, event_type) in enumerate(events):
        for comment in draw(st.lists(LINE_TEXT, max_size=2)):  # keep-alives belong to no event
            stream += b":" + comment.encode() + newline
        start = len(stream)
        if event_type is not None:
            stream += b"event: " + event_type.encode() + newline
        for line in data_lines:
            stream += b"data: " + line.encode() + newline
        if number < len(events) - 1 or draw(st.booleans()):  # the last event may end with the stream
            stream += newline
        expected.append((start, "\n".join(data_lines), event_type or None))
    return bytes(stream), expected


JSON_KEYS = st.sampled_from(
    ["choices", "delta", "message", "content", "text", "reasoning_content", "reasoning", "usage",
     "prompt_tokens", "completion_tokens", "error", "object", "data", "embedding", "code", "type"]
) | st.text(max_size=8)  # fmt: skip
JSON_SCALARS = (
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_KEYS, children, max_size=5),
    max_leaves=20,
)
EVENT_DATA = (
    st.text(max_size=60)
    | JSON_VALUES.map(lambda value: orjson.dumps(value).decode())
    | st.just("[DONE]")
    | st.just('{"choices":[{"delta":{"content":"x"}}]}')
)

ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(categories=None), max_size=20)
    | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


# Values a user might really give (most valid for some field), and values at the wire's edges.
PLAUSIBLE = (
    st.none()
    | st.booleans()
    | st.integers(min_value=0, max_value=1_000)
    | st.floats(min_value=0.001, max_value=1_000.0)
    | st.sampled_from(["chat", "embeddings", "gamma", "constant", "single_turn", "slurm", "abort", "m", "a.jsonl"])
    | st.sampled_from(["http://127.0.0.1:8000", "https://h/v1", {"X-Key": "v"}, {"temperature": 0.5}])
    | st.sampled_from([{"request_latency": 100.0}, {"time_to_first_token": -1.0}, {"k": float("nan")}])
    | st.sampled_from([2**63, -(2**63) - 1, float("nan"), float("inf"), "bad\udcff", {"X-A": "a\r\nb"}])
)
FIELD_VALUE = PLAUSIBLE | ANY_VALUE


def typed_values(annotation: Any) -> st.SearchStrategy[Any]:
    """Values of a config field's type, in a range where its constraints are often met."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (Union, UnionType):
        return st.one_of([typed_values(arg) for arg in args])
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), typed_values(args[1]), max_size=3)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        bool: st.booleans(),
        int: st.integers(min_value=-2, max_value=2_000) | st.integers(min_value=2**63 - 1, max_value=2**65),
        float: st.floats(min_value=-1.0, max_value=2_000.0) | st.floats(),
        str: st.text(max_size=12) | st.just("not utf-8 \udcff"),
        Path: st.text(max_size=12) | st.just("not utf-8 \udcff"),
    }
    return simple.get(annotation, JSON_SCALARS)


def fields_of(model: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Up to four of the model's fields, each with a value of its type (often valid) or any value, and
    now and then a name the model does not have."""
    values = {name: rarely(FIELD_VALUE, typed_values(info.annotation)) for name, info in model.model_fields.items()}
    known = st.lists(st.sampled_from(sorted(values)), max_size=4, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: values[name] for name in names})
    )
    unknown = st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda name: name not in values), FIELD_VALUE)
    return st.tuples(known, rarely(unknown, st.just({}))).map(lambda pair: pair[0] | pair[1])


def rarely(strategy: st.SearchStrategy[Any], otherwise: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`strategy` one draw in five, else `otherwise`."""
    return st.integers(min_value=0, max_value=4).flatmap(lambda n: strategy if n == 0 else otherwise)


# --- SSE ---------------------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=512).flatmap(chunked))
def test_parse_sse_never_raises_on_arbitrary_bytes(chunks: list[tuple[int, bytes]]) -> None:
    events = parse_sse(chunks)
    times_ns = {perf_ns for perf_ns, raw in chunks if raw}
    assert all(event.perf_ns in times_ns for event in events)


@st.composite
def chunked_well_formed_stream(draw: st.DrawFn) -> tuple[list[tuple[int, bytes]], list[SseEvent]]:
    """A well-formed stream cut into chunks, and the events it holds, each stamped with the time of the
    chunk that holds the first byte of its first field line."""
    stream, expected = draw(well_formed_stream())
    chunks = draw(chunked(stream))
    starts, times_ns = [], []
    offset = 0
    for perf_ns, raw in chunks:
        if raw:
            starts.append(offset)
            times_ns.append(perf_ns)
            offset += len(raw)
    events = [
        SseEvent(perf_ns=times_ns[bisect_right(starts, start) - 1], data=data, event=event_type)
        for start, data, event_type in expected
    ]
    return chunks, events


@FAST
@given(chunked_well_formed_stream())
def test_parse_sse_gives_back_every_event_whatever_the_chunking(
    case: tuple[list[tuple[int, bytes]], list[SseEvent]],
) -> None:
    chunks, events = case
    assert parse_sse(chunks) == events


# --- responses ---------------------------------------------------------------------------------------


@FAST
@given(
    st.sampled_from(["chat", "completions", "embeddings"]),
    st.lists(st.builds(SseEvent, perf_ns=NON_NEGATIVE_INT64, data=EVENT_DATA, event=st.none() | st.text()), max_size=6),
)
def test_parse_stream_never_raises_on_arbitrary_event_data(endpoint_type: Any, events: list[SseEvent]) -> None:
    parsed = parse_stream(endpoint_type, events)
    assert (parsed.error is None) == (parsed.error_kind is None)
    assert len(parsed.content_times_ns) <= len(events)


@FAST
@given(
    st.sampled_from(["chat", "completions", "embeddings"]),
    st.binary(max_size=200) | EVENT_DATA.map(str.encode),
)
def test_parse_body_never_raises_on_arbitrary_bytes(endpoint_type: Any, body: bytes) -> None:
    parsed = parse_body(endpoint_type, body, received_perf_ns=7)
    assert parsed.content_times_ns in ([], [7])


# --- codec -------------------------------------------------------------------------------------------

KINDS = st.sampled_from(["credit_drop", "credit_return", "record_batch", "heartbeat", "configure", "nope"])
FRAMES = (
    st.binary(max_size=300)
    | st.dictionaries(st.just("kind"), KINDS, min_size=1).flatmap(
        lambda head: st.dictionaries(JSON_KEYS | st.sampled_from(["credit_id", "phase", "records"]), JSON_VALUES).map(
            lambda rest: orjson.dumps(rest | head)
        )
    )
    | JSON_VALUES.map(orjson.dumps)
)


@FAST
@given(FRAMES)
def test_decode_raises_only_protocol_error(frame: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(frame)


CREDIT_DROPS = st.builds(
    CreditDrop,
    credit_id=INT64,
    phase=st.sampled_from(["warmup", "profiling"]),
    conversation_index=INT64,
    turn_index=INT64,
    scheduled_wall_ns=st.none() | INT64,
    cancel_after_ns=st.none() | INT64,
)
OPTIONAL_INT = st.none() | INT64
REQUEST_RECORDS = st.builds(
    RequestRecord,
    credit_id=INT64,
    phase=st.sampled_from(["warmup", "profiling"]),
    worker_id=st.text(max_size=10),
    node=st.text(max_size=10),
    conversation_index=INT64,
    turn_index=INT64,
    scheduled_wall_ns=OPTIONAL_INT,
    started_wall_ns=INT64,
    latency_ns=OPTIONAL_INT,
    response_times_ns=st.lists(INT64, max_size=5),
    status_code=OPTIONAL_INT,
    error_type=st.none() | st.sampled_from(["http_error", "timeout", "lost", "cancelled"]),
    error_message=st.none() | st.text(max_size=40),
    input_tokens=OPTIONAL_INT,
    output_tokens=OPTIONAL_INT,
    output_tokens_source=st.none() | st.sampled_from(["usage", "tokenizer", "chunks"]),
    clock_offset_ns=OPTIONAL_INT,
    clock_offset_bound_ns=OPTIONAL_INT,
)


@FAST
@given(CREDIT_DROPS)
def test_credit_drops_round_trip(message: CreditDrop) -> None:
    assert decode(encode(message)) == message


@FAST
@given(st.builds(RecordBatch, records=st.lists(REQUEST_RECORDS, max_size=4)))
def test_record_batches_round_trip(message: RecordBatch) -> None:
    assert decode(encode(message)) == message


# --- config ------------------------------------------------------------------------------------------


@FAST
@given(fields_of(LoadConfig))
def test_load_config_raises_only_validation_error(fields: dict[str, Any]) -> None:
    with contextlib.suppress(ValidationError):
        LoadConfig(**fields)


MODEL_NAMES = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8)
RUN_CONFIG_FIELDS = st.fixed_dictionaries(
    {
        "endpoint": st.tuples(rarely(FIELD_VALUE, MODEL_NAMES), fields_of(EndpointConfig)).map(
            lambda pair: {"model": pair[0]} | pair[1]
        )
    },
    optional={
        "inputs": fields_of(InputConfig),
        "load": fields_of(LoadConfig),
        "metrics": fields_of(MetricsConfig),
        "cluster": fields_of(ClusterConfig),
        "workers": FIELD_VALUE,
        "artifact_dir": FIELD_VALUE,
        "service_start_timeout_s": FIELD_VALUE,
    },
)


@FAST
@given(RUN_CONFIG_FIELDS)
def test_run_config_raises_only_validation_error_and_what_it_accepts_survives_the_wire(fields: dict[str, Any]) -> None:
    try:
        config = RunConfig(**fields)
    except ValidationError:
        return
    assert RunConfig.model_validate_json(orjson.dumps(config.model_dump(mode="json"))) == config


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (EndpointConfig, {"model": "bad\udcff"}),  # argv bytes that are not UTF-8 arrive as lone surrogates
        (EndpointConfig, {"model": "m", "headers": {"X-A": "\udcff"}}),
        (EndpointConfig, {"model": "m", "extra_inputs": {"top_k": 2**64}}),
        (EndpointConfig, {"model": "m", "extra_inputs": {"nested": [float("nan")]}}),
        (EndpointConfig, {"model": "m", "extra_inputs": {"when": object()}}),
        (EndpointConfig, {"model": "m", "request_timeout_s": float("inf")}),
        (LoadConfig, {"request_count": 2**64}),
        (InputConfig, {"random_seed": 2**63}),
        (InputConfig, {"input_file": "\udcff.jsonl", "custom_dataset_type": "single_turn"}),
        (MetricsConfig, {"goodput": {"request_latency": float("inf")}}),
    ],
)
def test_values_the_wire_cannot_carry_are_refused(model: type[Any], fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model(**fields)


def test_the_config_strategy_reaches_accepted_configs_with_options() -> None:
    """The wire property above is only worth something if the strategy produces configs that pass."""

    def accepted_with_options(fields: dict[str, Any]) -> bool:
        try:
            config = RunConfig(**fields)
        except ValidationError:
            return False
        parts = (config.endpoint, config.inputs, config.load, config.metrics, config.cluster)
        return sum(len(part.model_fields_set) for part in parts) >= 2  # the model name and one more

    assert find(RUN_CONFIG_FIELDS, accepted_with_options, settings=settings(max_examples=500, database=None))


# --- goodput -----------------------------------------------------------------------------------------

GOODPUT_PARTS = st.tuples(
    st.sampled_from(list(GOODPUT_METRICS)) | st.text(max_size=8),
    st.sampled_from([":", "", "::", " : "]),
    st.floats().map(repr) | st.text(max_size=6),
).map("".join)


@FAST
@given(st.text(max_size=60) | st.lists(GOODPUT_PARTS, max_size=4).map(" ".join))
def test_goodput_parser_raises_only_usage_error(spec: str) -> None:
    try:
        slos = parse_goodput_spec(spec)
    except UsageError as exc:
        assert "\n" not in str(exc) or "\n" in spec  # one line, unless the user's own text had a break
        return
    assert slos and all(name in GOODPUT_METRICS and value > 0 for name, value in slos.items())


@pytest.mark.parametrize("spec", ["time_to_first_token:200", "request_latency:3000 inter_token_latency:20"])
def test_goodput_parser_accepts_good_specs(spec: str) -> None:
    assert parse_goodput_spec(spec)
