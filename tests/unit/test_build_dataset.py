from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from aiperf_hpc.config import InputConfig
from aiperf_hpc.dataset.build import build_dataset
from aiperf_hpc.errors import UsageError
from aiperf_hpc.protocol.messages import Conversation


class FakeTokenizer:
    name = "fake"

    def encode(self, text: str) -> list[int]:
        return list(range(len(text.split())))

    def decode(self, ids: list[int]) -> str:
        return " ".join("w" for _ in ids)

    def count(self, text: str) -> int:
        return len(text.split())


class FakePrompts:
    def prompt(self, num_tokens: int) -> str:
        return " ".join(["w"] * num_tokens)

    def prompt_for_hash_ids(self, hash_ids: Sequence[int], num_tokens: int) -> str:
        return f"blocks {list(hash_ids)} {num_tokens}"


def _build(**inputs: Any) -> list[Conversation]:
    return build_dataset(InputConfig(**inputs), tokenizer=FakeTokenizer(), factory=FakePrompts())  # type: ignore[arg-type]


def _jsonl(path: Path, *objects: object) -> Path:
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in objects))
    return path


def test_single_turn_file(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "s.jsonl", {"text": "a b"}, {"text": "c", "output_length": 2})
    conversations = _build(input_file=path, custom_dataset_type="single_turn")
    assert [(c.index, c.turns[0].prompt, c.turns[0].max_tokens) for c in conversations] == [
        (0, "a b", None),
        (1, "c", 2),
    ]


def test_multi_turn_file(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "m.jsonl", {"session_id": "x", "turns": [{"text": "one"}, {"text": "two", "delay": 5}]})
    [conversation] = _build(input_file=path, custom_dataset_type="multi_turn")
    assert conversation.session_id == "x"
    assert [t.prompt for t in conversation.turns] == ["one", "two"]


def test_mooncake_trace_uses_the_prompt_factory(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "t.jsonl", {"timestamp": 0, "input_length": 3, "hash_ids": [4]}, {"timestamp": 1, "input_length": 2}
    )
    conversations = _build(input_file=path, custom_dataset_type="mooncake_trace")
    assert [c.turns[0].prompt for c in conversations] == ["blocks [4] 3", "w w"]


def test_sharegpt_takes_num_entries_at_most(tmp_path: Path) -> None:
    items = [
        {"conversations": [{"from": "human", "value": f"q{k}"}, {"from": "gpt", "value": "a b"}]} for k in range(4)
    ]
    path = tmp_path / "sharegpt.json"
    path.write_bytes(orjson.dumps(items))
    conversations = _build(input_file=path, public_dataset="sharegpt", num_entries=3)
    assert [(c.index, c.turns[0].prompt, c.turns[0].max_tokens) for c in conversations] == [
        (0, "q0", 2),
        (1, "q1", 2),
        (2, "q2", 2),
    ]


def test_loader_errors_reach_the_caller(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"t\.jsonl:1: 'input_length' must be a positive integer"):
        _build(input_file=_jsonl(tmp_path / "t.jsonl", {"input_length": -1}), custom_dataset_type="mooncake_trace")


def test_without_input_file_prompts_are_synthetic() -> None:
    conversations = _build(num_entries=3, isl_mean=4, random_seed=1)
    assert [c.index for c in conversations] == [0, 1, 2]
    assert all(turn.prompt for c in conversations for turn in c.turns)


def test_mooncake_trace_blocks_are_isl_block_size_tokens(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "t.jsonl", {"input_length": 5, "hash_ids": [1, 2]})
    assert _build(input_file=path, custom_dataset_type="mooncake_trace", isl_block_size=4)[0].turns[0].prompt == (
        "blocks [1, 2] 5"
    )
    with pytest.raises(UsageError, match=r"t\.jsonl:1: 'input_length' 5 does not fit 2 'hash_ids' blocks of 2 tokens"):
        _build(input_file=path, custom_dataset_type="mooncake_trace", isl_block_size=2)
