from __future__ import annotations

import orjson

from aiperf_hpc.endpoints.payload import build_payload, encode_payload


def test_chat_payload_non_streaming() -> None:
    payload = build_payload("chat", "m1", "hello there", 32, False, {})
    assert payload == {
        "model": "m1",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 32,
        "stream": False,
    }


def test_completions_payload_streaming_asks_for_usage() -> None:
    payload = build_payload("completions", "m2", "once upon", 8, True, {})
    assert payload == {
        "model": "m2",
        "prompt": "once upon",
        "max_tokens": 8,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_max_tokens_none_is_left_out() -> None:
    assert "max_tokens" not in build_payload("chat", "m", "p", None, True, {})
    assert "max_tokens" not in build_payload("completions", "m", "p", None, False, {})


def test_extra_inputs_are_merged_last_and_override() -> None:
    extra = {"temperature": 0.0, "max_tokens": 5, "stream_options": {"include_usage": False}}
    payload = build_payload("chat", "m", "p", 100, True, extra)
    assert payload["temperature"] == 0.0
    assert payload["max_tokens"] == 5
    assert payload["stream_options"] == {"include_usage": False}
    assert payload["stream"] is True


def test_extra_inputs_are_not_mutated_or_aliased() -> None:
    extra = {"ignore_eos": True}
    payload = build_payload("completions", "m", "p", None, False, extra)
    payload["ignore_eos"] = False
    assert extra == {"ignore_eos": True}


def test_encode_payload_round_trips_through_json() -> None:
    payload = build_payload("chat", "m", "héllo \u2603", 3, True, {"top_k": 1})
    encoded = encode_payload(payload)
    assert isinstance(encoded, bytes)
    assert orjson.loads(encoded) == payload


def test_encode_payload_is_compact_utf8() -> None:
    assert encode_payload({"a": 1, "b": [1, 2], "c": "\u00e9"}) == b'{"a":1,"b":[1,2],"c":"\xc3\xa9"}'


def test_chat_history_becomes_alternating_messages_before_the_prompt() -> None:
    history = [("first question", "first answer"), ("second question", "second answer")]
    payload = build_payload("chat", "m", "third question", 4, False, {}, history)
    assert payload["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "second answer"},
        {"role": "user", "content": "third question"},
    ]
    assert payload["max_tokens"] == 4


def test_completions_history_is_joined_into_the_prompt_with_newlines() -> None:
    history = [("q1", "a1"), ("q2", "a2")]
    payload = build_payload("completions", "m", "q3", None, True, {}, history)
    assert payload["prompt"] == "q1\na1\nq2\na2\nq3"
    assert payload["stream"] is True


def test_empty_history_is_a_single_turn() -> None:
    assert build_payload("chat", "m", "p", 1, False, {}, ()) == build_payload("chat", "m", "p", 1, False, {})
    assert build_payload("completions", "m", "p", 1, False, {}, [])["prompt"] == "p"


def test_history_is_not_aliased_into_the_payload() -> None:
    history = [("q1", "a1")]
    payload = build_payload("chat", "m", "q2", None, False, {}, history)
    payload["messages"].append({"role": "user", "content": "extra"})
    assert history == [("q1", "a1")]
    assert len(build_payload("chat", "m", "q2", None, False, {}, history)["messages"]) == 3


def test_embeddings_payload_is_model_and_input_only() -> None:
    payload = build_payload("embeddings", "e5", "embed me", 32, True, {}, [("ignored", "history")])
    assert payload == {"model": "e5", "input": "embed me"}


def test_embeddings_payload_merges_extra_inputs() -> None:
    payload = build_payload("embeddings", "e5", "x", None, False, {"encoding_format": "float", "input": ["a", "b"]})
    assert payload == {"model": "e5", "input": ["a", "b"], "encoding_format": "float"}
