from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from aiperf_hpc.dataset.loaders import load_mooncake_trace, load_multi_turn, load_sharegpt, load_single_turn
from aiperf_hpc.errors import UsageError
from aiperf_hpc.protocol.messages import Conversation, Turn


class FakeTokenizer:
    """One token per whitespace-separated word."""

    name = "fake"

    def count(self, text: str) -> int:
        return len(text.split())


class FakePrompts:
    """Prompts that say how they were made; like the real factory, refuses a length it cannot hit."""

    def prompt(self, num_tokens: int) -> str:
        if num_tokens == 13:
            raise UsageError("tokenizer 'fake' cannot make a prompt of exactly 13 tokens")
        return f"plain {num_tokens}"

    def prompt_for_hash_ids(self, hash_ids: Sequence[int], num_tokens: int) -> str:
        return f"blocks {list(hash_ids)} {num_tokens}"


def _write(tmp_path: Path, text: str, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _lines(*objects: object) -> str:
    return "\n".join(orjson.dumps(o).decode() for o in objects) + "\n"


def _one_turn(index: int, session_id: str, **turn: object) -> Conversation:
    return Conversation(index=index, session_id=session_id, turns=[Turn.model_validate(turn)])


def _single(path: Path) -> list[Conversation]:
    return load_single_turn(path, tokenizer=FakeTokenizer())


def _multi(path: Path) -> list[Conversation]:
    return load_multi_turn(path, tokenizer=FakeTokenizer())


def _trace(path: Path) -> list[Conversation]:
    return load_mooncake_trace(path, tokenizer=FakeTokenizer(), prompts=FakePrompts(), block_size=10)


def _error(load: object, path: Path) -> str:
    assert callable(load)
    with pytest.raises(UsageError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- single_turn ----------------------------------------------------------------------------------


def test_single_turn_good_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '{"text": "hello there world", "output_length": 5}\n'
        "\n"
        '   \n{"texts": ["a b", "c"], "max_tokens": 7, "session_id": "s", "delay": 250}\n'
        '{"text": "x", "timestamp": null, "type": "single_turn"}',
    )
    assert _single(path) == [
        _one_turn(0, "session-0", prompt="hello there world", max_tokens=5, input_tokens_target=3),
        _one_turn(1, "s", prompt="a b\nc", max_tokens=7, input_tokens_target=3, delay_ms=250.0),
        _one_turn(2, "session-2", prompt="x", input_tokens_target=1),
    ]


def test_single_turn_timestamps_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + _lines({"text": "a", "timestamp": 0}, {"text": "b", "timestamp": 12.5}).replace("\n", "\r\n").encode()
    )
    assert [c.turns[0].timestamp_ms for c in _single(path)] == [0.0, 12.5]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"text": "a"}\n{"output_length": 3}\n', "data.jsonl:2: 'text' is missing"),
        ('{"text": "a"}\n\n{"text": "b",}\n', "data.jsonl:3: invalid JSON: "),
        ("[1, 2]\n", "data.jsonl:1: expected a JSON object, got [1,2]"),
        ('{"text": "a", "output_length": -1}', "data.jsonl:1: 'output_length' must be a positive integer, got -1"),
        ('{"text": "a", "output_length": "9"}', "data.jsonl:1: 'output_length' must be a positive integer"),
        ('{"text": "a", "output_length": true}', "data.jsonl:1: 'output_length' must be a positive integer"),
        ('{"text": "a", "output_length": 2.5}', "data.jsonl:1: 'output_length' must be a positive integer"),
        ('{"text": "a", "output_length": 1, "max_tokens": 1}', "data.jsonl:1: 'output_length' and 'max_tokens'"),
        ('{"text": 5}', "data.jsonl:1: 'text' must be a string, got 5"),
        ('{"text": "   "}', "data.jsonl:1: the prompt is empty"),
        ('{"text": "a", "texts": ["b"]}', "data.jsonl:1: 'text' and 'texts' cannot be used together"),
        ('{"texts": []}', "data.jsonl:1: 'texts' must be a non-empty list of strings"),
        ('{"texts": [{"name": "x"}]}', "data.jsonl:1: 'texts' must be a non-empty list of strings"),
        ('{"text": "a", "timestamp": -1}', "data.jsonl:1: 'timestamp' must be a non-negative number of milliseconds"),
        ('{"text": "a", "delay": "1s"}', "data.jsonl:1: 'delay' must be a non-negative number of milliseconds"),
        ('{"text": "a", "timestamp": 1, "delay": 1}', "data.jsonl:1: 'timestamp' and 'delay' cannot be used together"),
        ('{"text": "a", "output_lenght": 3}', "data.jsonl:1: unknown field 'output_lenght'"),
        ('{"text": "a", "image": "x.png"}', "data.jsonl:1: unknown field 'image'"),
        ('{"text": "a", "type": "multi_turn"}', "data.jsonl:1: 'type' is \"multi_turn\" but the file is read as"),
        ('{"text": "a", "session_id": 3}', "data.jsonl:1: 'session_id' must be a string"),
        ('{"text": "a", "timestamp": 5}\n{"text": "b"}', "data.jsonl:2: 'timestamp' is missing, but line 1 has one"),
        ('{"text": "a"}\n{"text": "b", "timestamp": 5}', "data.jsonl:1: 'timestamp' is missing, but line 2 has one"),
        ('{"text": "a", "timestamp": 5}\n{"text": "b", "timestamp": 4}', "data.jsonl:2: 'timestamp' 4 is before"),
    ],
)
def test_single_turn_errors_name_file_and_line(tmp_path: Path, content: str, expected: str) -> None:
    assert expected in _error(_single, _write(tmp_path, content))


# --- errors about the file itself, shared by every JSONL format --------------------------------------


@pytest.mark.parametrize("load", [_single, _multi, _trace])
def test_missing_file(tmp_path: Path, load: object) -> None:
    assert _error(load, tmp_path / "nope.jsonl") == f"{tmp_path / 'nope.jsonl'} does not exist"


@pytest.mark.parametrize("load", [_single, _multi, _trace])
def test_directory_instead_of_file(tmp_path: Path, load: object) -> None:
    assert _error(load, tmp_path) == f"{tmp_path} is a directory, not a file"


@pytest.mark.parametrize("load", [_single, _multi, _trace])
@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, load: object, content: str) -> None:
    path = _write(tmp_path, content)
    assert _error(load, path) == f"{path} has no entries"


@pytest.mark.parametrize("load", [_single, _multi, _trace])
def test_not_utf8(tmp_path: Path, load: object) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"text": "caf\u00e9"}'.encode("latin-1"))
    assert _error(load, path) == f"{path} is not UTF-8 text (byte 13)"


# --- multi_turn -----------------------------------------------------------------------------------


def test_multi_turn_good_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _lines(
            {"session_id": "chat", "turns": [{"text": "hi you", "output_length": 4}, {"text": "more", "delay": 1500}]},
            {"turns": [{"texts": ["x", "y z"]}]},
            {"session_id": "chat", "type": "multi_turn", "turns": [{"text": "last one", "delay": 0}]},
            {"turns": [{"text": "alone", "timestamp": 100}, {"text": "later", "timestamp": 100}]},
        ),
    )
    assert _multi(path) == [
        Conversation(
            index=0,
            session_id="chat",
            turns=[
                Turn(prompt="hi you", max_tokens=4, input_tokens_target=2),
                Turn(prompt="more", input_tokens_target=1, delay_ms=1500.0),
                Turn(prompt="last one", input_tokens_target=2, delay_ms=0.0),
            ],
        ),
        Conversation(index=1, session_id="session-1", turns=[Turn(prompt="x\ny z", input_tokens_target=3)]),
        Conversation(
            index=2,
            session_id="session-2",
            turns=[
                Turn(prompt="alone", input_tokens_target=1, timestamp_ms=100.0),
                Turn(prompt="later", input_tokens_target=1, timestamp_ms=100.0),
            ],
        ),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"session_id": "a"}, "data.jsonl:2: 'turns' is missing"),
        ({"turns": []}, "data.jsonl:2: 'turns' must be a non-empty list of turns"),
        ({"turns": {"text": "a"}}, "data.jsonl:2: 'turns' must be a non-empty list of turns"),
        ({"turns": [{"text": "a"}, "b"]}, "data.jsonl:2: turn 2 must be a JSON object"),
        ({"turns": [{"text": "a"}, {"output_length": 3}]}, "data.jsonl:2: turn 2: 'text' is missing"),
        ({"turns": [{"text": "a", "session_id": "s"}]}, "data.jsonl:2: turn 1: unknown field 'session_id'"),
        ({"turns": [{"text": "a", "output_length": 0}]}, "data.jsonl:2: turn 1: 'output_length' must be a positive"),
        ({"text": "a"}, "data.jsonl:2: unknown field 'text'"),
        ({"session_id": 1, "turns": [{"text": "a"}]}, "data.jsonl:2: 'session_id' must be a string"),
        (
            {"turns": [{"text": "a", "timestamp": 9}, {"text": "b", "timestamp": 3}]},
            "data.jsonl:2: turn 2: 'timestamp' is earlier than a previous turn's",
        ),
    ],
)
def test_multi_turn_errors_name_file_line_and_turn(tmp_path: Path, line: object, expected: str) -> None:
    path = _write(tmp_path, _lines({"turns": [{"text": "fine"}]}, line))
    assert expected in _error(_multi, path)


def test_multi_turn_merged_session_keeps_turn_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _lines(
            {"session_id": "s", "turns": [{"text": "a", "timestamp": 50}]},
            {"session_id": "s", "turns": [{"text": "b", "timestamp": 10}]},
        ),
    )
    assert "data.jsonl:2: turn 1: 'timestamp' is earlier" in _error(_multi, path)


# --- mooncake_trace -------------------------------------------------------------------------------


def test_mooncake_trace_good_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _lines(
            {"timestamp": 0, "input_length": 20, "output_length": 8, "hash_ids": [0, 1]},
            {"timestamp": 0, "input_length": 5},
            {"timestamp": 3052.5, "text_input": "exact words here", "output_length": 2},
            {"timestamp": 4000, "input_length": 7, "hash_ids": []},
        ),
    )
    assert _trace(path) == [
        _one_turn(0, "session-0", prompt="blocks [0, 1] 20", max_tokens=8, input_tokens_target=20, timestamp_ms=0.0),
        _one_turn(1, "session-1", prompt="plain 5", input_tokens_target=5, timestamp_ms=0.0),
        _one_turn(2, "session-2", prompt="exact words here", max_tokens=2, input_tokens_target=3, timestamp_ms=3052.5),
        _one_turn(3, "session-3", prompt="plain 7", input_tokens_target=7, timestamp_ms=4000.0),
    ]


def test_mooncake_trace_without_timestamps(tmp_path: Path) -> None:
    path = _write(tmp_path, _lines({"input_length": 3}, {"input_length": 4, "output_length": 1}))
    assert [(c.turns[0].prompt, c.turns[0].timestamp_ms) for c in _trace(path)] == [
        ("plain 3", None),
        ("plain 4", None),
    ]


def test_mooncake_trace_out_of_order_timestamps_name_the_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _lines(
            {"timestamp": 0, "input_length": 1},
            {"timestamp": 2000, "input_length": 1},
            {"timestamp": 2000, "input_length": 1},
            {"timestamp": 1999, "input_length": 1},
        ),
    )
    assert _error(_trace, path) == (
        f"{path}:4: 'timestamp' 1999 is before the previous line's 2000 (lines must be in time order)"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"output_length": 3}, "data.jsonl:2: 'input_length' is missing (or give 'text_input')"),
        ({"input_length": 0}, "data.jsonl:2: 'input_length' must be a positive integer, got 0"),
        ({"input_length": "12"}, "data.jsonl:2: 'input_length' must be a positive integer, got \"12\""),
        ({"input_length": 1.5}, "data.jsonl:2: 'input_length' must be a positive integer, got 1.5"),
        ({"input_length": 5, "output_length": -2}, "data.jsonl:2: 'output_length' must be a positive integer"),
        ({"input_length": 5, "hash_ids": [1, "2"]}, "data.jsonl:2: 'hash_ids' must be a list of non-negative integers"),
        ({"input_length": 5, "hash_ids": 3}, "data.jsonl:2: 'hash_ids' must be a list of non-negative integers"),
        ({"input_length": 5, "hash_ids": [-1]}, "data.jsonl:2: 'hash_ids' must be a list of non-negative integers"),
        (
            {"input_length": 25, "hash_ids": [1, 2]},
            "data.jsonl:2: 'input_length' 25 does not fit 2 'hash_ids' blocks of 10 tokens (expected 11..20;",
        ),
        ({"input_length": 10, "hash_ids": [1, 2]}, "data.jsonl:2: 'input_length' 10 does not fit 2 'hash_ids'"),
        ({"input_length": 13}, "data.jsonl:2: tokenizer 'fake' cannot make a prompt of exactly 13 tokens"),
        ({"text_input": "a", "input_length": 1}, "data.jsonl:2: 'text_input' cannot be used with 'input_length'"),
        ({"text_input": "a", "hash_ids": [1]}, "data.jsonl:2: 'text_input' cannot be used with 'input_length'"),
        ({"text_input": ""}, "data.jsonl:2: 'text_input' is empty"),
        ({"text_input": ["a"]}, "data.jsonl:2: 'text_input' must be a string"),
        ({"input_length": 5, "timestamp": -3}, "data.jsonl:2: 'timestamp' must be a non-negative number"),
        ({"input_length": 5, "session_id": "s"}, "data.jsonl:2: unknown field 'session_id'"),
    ],
)
def test_mooncake_trace_errors_name_file_and_line(tmp_path: Path, line: object, expected: str) -> None:
    path = _write(tmp_path, _lines({"input_length": 10}, line))
    assert expected in _error(_trace, path)


def test_mooncake_trace_mixed_timestamps_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _lines({"input_length": 1, "timestamp": 0}, {"input_length": 1}))
    assert "data.jsonl:2: 'timestamp' is missing, but line 1 has one" in _error(_trace, path)


# --- sharegpt -------------------------------------------------------------------------------------


def _sharegpt(tmp_path: Path, document: object, max_conversations: int | None = None) -> list[Conversation]:
    path = _write(tmp_path, orjson.dumps(document).decode(), "sharegpt.json")
    return load_sharegpt(path, tokenizer=FakeTokenizer(), max_conversations=max_conversations).conversations


def _exchange(question: str, answer: str, item_id: str | None = None) -> dict[str, object]:
    item: dict[str, object] = {
        "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    }
    if item_id is not None:
        item["id"] = item_id
    return item


def test_sharegpt_takes_first_exchange_and_skips_unusable_items(tmp_path: Path) -> None:
    document = [
        _exchange("what is this", "a b c d e", "id-a"),
        {"id": "short", "conversations": [{"from": "human", "value": "only a question"}]},
        {"conversations": []},
        _exchange("   ", "answer"),
        _exchange("question", "  "),
        {"conversations": [{"from": "gpt", "value": "hello"}, {"from": "gpt", "value": "again"}]},
        {
            "id": "sys",
            "conversations": [
                {"from": "system", "value": "be brief"},
                {"from": "user", "value": "hi"},
                {"from": "assistant", "value": "hello to you"},
                {"from": "user", "value": "next"},
                {"from": "assistant", "value": "ignored"},
            ],
        },
        _exchange("no id here", "one", ""),
    ]
    path = _write(tmp_path, orjson.dumps(document).decode(), "sharegpt.json")
    loaded = load_sharegpt(path, tokenizer=FakeTokenizer())
    assert loaded.skipped == 5
    assert loaded.conversations == [
        _one_turn(0, "id-a", prompt="what is this", max_tokens=5, input_tokens_target=3),
        _one_turn(1, "sys", prompt="hi", max_tokens=3, input_tokens_target=1),
        _one_turn(2, "session-2", prompt="no id here", max_tokens=1, input_tokens_target=3),
    ]


def test_sharegpt_takes_at_most_max_conversations_in_file_order(tmp_path: Path) -> None:
    document = [_exchange(f"q{k}", "a") for k in range(5)]
    assert [c.turns[0].prompt for c in _sharegpt(tmp_path, document, max_conversations=2)] == ["q0", "q1"]
    assert len(_sharegpt(tmp_path, document)) == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "sharegpt.json:1: invalid JSON: "),
        ('[\n{"conversations": []},\n{"conversations": [}\n]', "sharegpt.json:3: invalid JSON: "),
        ('{"conversations": []}', "sharegpt.json: expected a JSON array of conversations"),
        ("[]", "sharegpt.json has no entries"),
        ('[{"conversations": [{"from": "human", "value": "q"}]}]', "no usable conversation in "),
        ("[1]", "sharegpt.json: item [0]: expected a JSON object, got 1"),
        ('[{"conversations": []}, {"id": "x"}]', "sharegpt.json: item [1]: 'conversations' must be a list"),
        ('[{"conversations": ["hi", "there"]}]', "sharegpt.json: item [0]: message 1 must be a JSON object"),
        (
            '[{"conversations": [{"from": "human", "value": 3}, {"from": "gpt", "value": "a"}]}]',
            "sharegpt.json: item [0]: message 1 needs string 'from' and 'value' fields",
        ),
    ],
)
def test_sharegpt_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text, "sharegpt.json")
    message = _error(lambda p: load_sharegpt(p, tokenizer=FakeTokenizer()), path)
    assert expected in message
    assert str(path) in message


def test_sharegpt_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    assert _error(lambda p: load_sharegpt(p, tokenizer=FakeTokenizer()), path) == f"{path} does not exist"
