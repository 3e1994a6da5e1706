from __future__ import annotations

from pathlib import Path
from statistics import mean, pstdev
from typing import Any

import orjson
import pytest

from aiperf_hpc.config import InputConfig
from aiperf_hpc.dataset.inputs_file import write_inputs_json
from aiperf_hpc.dataset.prompts import PromptFactory
from aiperf_hpc.dataset.synthetic import build_synthetic_conversations
from aiperf_hpc.dataset.tokenizer import Tokenizer, load_tokenizer
from aiperf_hpc.endpoints.payload import build_payload
from aiperf_hpc.protocol.messages import Conversation, Turn


@pytest.fixture(scope="session")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return load_tokenizer(None, cache_dir=tmp_path_factory.mktemp("tokenizer-cache"))


def _build(tokenizer: Tokenizer, **overrides: Any) -> list[Conversation]:
    options: dict[str, Any] = {
        "num_entries": 20,
        "isl_mean": 50,
        "isl_stddev": 10.0,
        "osl_mean": 30,
        "osl_stddev": 5.0,
        "random_seed": 7,
    }
    options.update(overrides)
    inputs = InputConfig(**options)
    factory = PromptFactory(
        tokenizer,
        random_seed=inputs.random_seed,
        prefix_pool_size=inputs.prompt_prefix_pool_size,
        prefix_length=inputs.prompt_prefix_length,
    )
    return build_synthetic_conversations(inputs, factory)


def _turns(conversations: list[Conversation]) -> list[Turn]:
    return [turn for conversation in conversations for turn in conversation.turns]


def test_single_turn_conversations(bundled: Tokenizer) -> None:
    conversations = _build(bundled, num_entries=5)
    assert [c.index for c in conversations] == [0, 1, 2, 3, 4]
    assert [c.session_id for c in conversations] == [f"session-{i}" for i in range(5)]
    assert all(len(c.turns) == 1 for c in conversations)
    assert all(c.turns[0].delay_ms is None and c.turns[0].timestamp_ms is None for c in conversations)


def test_prompt_lengths_are_exact_tokens(bundled: Tokenizer) -> None:
    turns = _turns(_build(bundled, num_entries=40, isl_mean=60, isl_stddev=40.0))
    assert all(turn.input_tokens_target == bundled.count(turn.prompt) for turn in turns)
    assert len({turn.input_tokens_target for turn in turns}) > 10


def test_zero_stddev_gives_fixed_lengths(bundled: Tokenizer) -> None:
    turns = _turns(_build(bundled, num_entries=10, isl_mean=123, isl_stddev=0.0, osl_mean=17, osl_stddev=0.0))
    assert [bundled.count(t.prompt) for t in turns] == [123] * 10
    assert [t.input_tokens_target for t in turns] == [123] * 10
    assert [t.max_tokens for t in turns] == [17] * 10
    assert len({t.prompt for t in turns}) == 10


def test_lengths_follow_the_distribution_loosely(bundled: Tokenizer) -> None:
    turns = _turns(_build(bundled, num_entries=1000, isl_mean=30, isl_stddev=8.0, osl_mean=100, osl_stddev=10.0))
    isl = [t.input_tokens_target or 0 for t in turns]
    osl = [t.max_tokens or 0 for t in turns]
    assert 29 < mean(isl) < 31
    assert 6.5 < pstdev(isl) < 9.5
    assert 98 < mean(osl) < 102


def test_lengths_are_clipped_at_one(bundled: Tokenizer) -> None:
    turns = _turns(_build(bundled, num_entries=200, isl_mean=1, isl_stddev=50.0, osl_mean=1, osl_stddev=50.0))
    isl = [t.input_tokens_target or 0 for t in turns]
    osl = [t.max_tokens or 0 for t in turns]
    assert min(isl) == 1 and min(osl) == 1
    assert isl.count(1) > 50  # about half the draws fall below 1
    assert all(bundled.count(t.prompt) == t.input_tokens_target for t in turns)


def test_max_tokens_is_none_without_osl_mean(bundled: Tokenizer) -> None:
    assert all(t.max_tokens is None for t in _turns(_build(bundled, osl_mean=None)))


def test_same_seed_same_conversations(bundled: Tokenizer) -> None:
    options = {"conversation_num": 10, "conversation_turn_mean": 3, "conversation_turn_stddev": 1.0}
    assert _build(bundled, **options) == _build(bundled, **options)
    first, second = _build(bundled, random_seed=1), _build(bundled, random_seed=2)
    assert [t.prompt for t in _turns(first)] != [t.prompt for t in _turns(second)]
    assert [t.input_tokens_target for t in _turns(first)] != [t.input_tokens_target for t in _turns(second)]


def test_prompts_do_not_depend_on_output_or_delay_options(bundled: Tokenizer) -> None:
    base = {"conversation_num": 8, "conversation_turn_mean": 2, "conversation_turn_stddev": 1.0}
    plain = _build(bundled, **base, osl_mean=None)
    varied = _build(bundled, **base, osl_mean=99, conversation_turn_delay_mean_ms=500.0)
    assert [t.prompt for t in _turns(plain)] == [t.prompt for t in _turns(varied)]


def test_multi_turn_counts_and_delays(bundled: Tokenizer) -> None:
    conversations = _build(
        bundled,
        num_entries=1,  # ignored when conversation_num is set
        isl_mean=10,
        isl_stddev=0.0,
        conversation_num=300,
        conversation_turn_mean=3,
        conversation_turn_stddev=1.5,
        conversation_turn_delay_mean_ms=200.0,
        conversation_turn_delay_stddev_ms=150.0,
    )
    assert len(conversations) == 300
    assert [c.session_id for c in conversations[:2]] == ["session-0", "session-1"]
    counts = [len(c.turns) for c in conversations]
    assert min(counts) == 1
    assert max(counts) >= 6
    assert 2.7 < mean(counts) < 3.4  # clipping at 1 pulls the mean up a little
    assert all(c.turns[0].delay_ms is None for c in conversations)
    delays = [t.delay_ms for c in conversations for t in c.turns[1:]]
    assert all(d is not None and d >= 0.0 for d in delays)
    assert min(d or 0.0 for d in delays) == 0.0  # about 9% of the draws fall below 0
    assert 180.0 < mean(d or 0.0 for d in delays) < 240.0
    assert all(bundled.count(t.prompt) == 10 for t in _turns(conversations))


def test_fixed_turn_count_and_delay(bundled: Tokenizer) -> None:
    conversations = _build(
        bundled,
        conversation_num=4,
        conversation_turn_mean=2,
        conversation_turn_delay_mean_ms=50.0,
    )
    assert [len(c.turns) for c in conversations] == [2] * 4
    assert [[t.delay_ms for t in c.turns] for c in conversations] == [[None, 50.0]] * 4


def test_prefix_pool_is_used(bundled: Tokenizer) -> None:
    conversations = _build(bundled, isl_mean=80, isl_stddev=0.0, prompt_prefix_pool_size=2, prompt_prefix_length=20)
    prefixes = {t.prompt[:40] for t in _turns(conversations)}
    assert len(prefixes) == 2


def test_inputs_json_round_trip(bundled: Tokenizer, tmp_path: Path) -> None:
    conversations = _build(
        bundled,
        num_entries=1,
        osl_mean=None,
        conversation_num=3,
        conversation_turn_mean=2,
        conversation_turn_delay_mean_ms=25.0,
    )
    turn = conversations[1].turns[0].model_copy(update={"max_tokens": 9, "timestamp_ms": 1234.5})
    conversations[1] = conversations[1].model_copy(update={"turns": [turn, *conversations[1].turns[1:]]})
    path = tmp_path / "inputs.json"
    extra = {"temperature": 0.5}

    write_inputs_json(path, conversations, endpoint_type="chat", model="m", streaming=True, extra_inputs=extra)

    document = orjson.loads(path.read_bytes())
    expected = [
        {
            "conversation_index": c.index,
            "session_id": c.session_id,
            "turns": [
                {
                    "turn_index": i,
                    "payload": build_payload(
                        "chat", "m", prompt=t.prompt, max_tokens=t.max_tokens, streaming=True, extra_inputs=extra
                    ),
                    "delay_ms": t.delay_ms,
                    "timestamp_ms": t.timestamp_ms,
                }
                for i, t in enumerate(c.turns)
            ],
        }
        for c in conversations
    ]
    assert document == {"data": expected}
    second = document["data"][1]["turns"]
    assert second[0]["payload"]["max_tokens"] == 9
    assert second[0]["timestamp_ms"] == 1234.5
    assert second[1]["delay_ms"] == 25.0
    assert "max_tokens" not in document["data"][0]["turns"][0]["payload"]
    # Every turn is shown as a first turn: its own prompt alone, no history.
    assert second[1]["payload"]["messages"] == [{"role": "user", "content": conversations[1].turns[1].prompt}]
    assert path.read_text().startswith('{\n  "data": [')  # indented for people to read


def test_inputs_json_completions_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "inputs.json"
    conversation = Conversation(
        index=4, session_id="s", turns=[Turn(prompt="a b c", max_tokens=2, input_tokens_target=3)]
    )
    write_inputs_json(path, [conversation], endpoint_type="completions", model="x", streaming=False, extra_inputs={})
    payload = {"model": "x", "prompt": "a b c", "max_tokens": 2, "stream": False}
    turn = {"turn_index": 0, "payload": payload, "delay_ms": None, "timestamp_ms": None}
    assert orjson.loads(path.read_bytes()) == {"data": [{"conversation_index": 4, "session_id": "s", "turns": [turn]}]}
    write_inputs_json(path, [], endpoint_type="chat", model="x", streaming=False, extra_inputs={})
    assert orjson.loads(path.read_bytes()) == {"data": []}


def test_the_first_conversations_do_not_depend_on_how_many_are_built(bundled: Tokenizer) -> None:
    """A short run builds only the prompts it sends (`RunConfig.synthetic_entries`): they must be
    the ones a full build would have sent first."""
    assert _build(bundled, num_entries=3) == _build(bundled, num_entries=20)[:3]
