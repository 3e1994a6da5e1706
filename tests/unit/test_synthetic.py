from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from aiperf_hpc.dataset.inputs_file import write_inputs_json
from aiperf_hpc.dataset.synthetic import build_synthetic_entries, corpus_words
from aiperf_hpc.endpoints.payload import build_payload
from aiperf_hpc.protocol.messages import DatasetEntry


def _build(**overrides: Any) -> list[DatasetEntry]:
    args: dict[str, Any] = {
        "num_entries": 20,
        "isl_mean": 50,
        "isl_stddev": 10.0,
        "osl_mean": 30,
        "osl_stddev": 5.0,
        "random_seed": 7,
    }
    args.update(overrides)
    return build_synthetic_entries(**args)


def test_corpus_is_bundled_and_large_enough() -> None:
    words = corpus_words()
    assert len(words) > 5000
    assert len(set(words)) > 1000


def test_same_seed_gives_the_same_entries() -> None:
    assert _build() == _build()


def test_different_seeds_give_different_entries() -> None:
    first, second = _build(random_seed=1), _build(random_seed=2)
    assert [e.prompt for e in first] != [e.prompt for e in second]
    assert [e.input_tokens_target for e in first] != [e.input_tokens_target for e in second]


def test_indexes_count_from_zero() -> None:
    assert [e.index for e in _build(num_entries=5)] == [0, 1, 2, 3, 4]


def test_zero_entries() -> None:
    assert _build(num_entries=0) == []


def test_zero_stddev_gives_exact_word_counts() -> None:
    entries = _build(num_entries=10, isl_mean=123, isl_stddev=0.0, osl_mean=17, osl_stddev=0.0)
    assert [len(e.prompt.split()) for e in entries] == [123] * 10
    assert [e.input_tokens_target for e in entries] == [123] * 10
    assert [e.max_tokens for e in entries] == [17] * 10


def test_prompts_of_one_length_still_differ() -> None:
    prompts = [e.prompt for e in _build(num_entries=10, isl_stddev=0.0)]
    assert len(set(prompts)) == 10


def test_prompt_word_count_matches_its_target() -> None:
    for entry in _build(num_entries=50, isl_stddev=20.0):
        assert len(entry.prompt.split()) == entry.input_tokens_target


def test_prompt_is_consecutive_corpus_words() -> None:
    words = corpus_words()
    prompt = _build(num_entries=1, isl_mean=40, isl_stddev=0.0)[0].prompt.split()
    assert any(list(words[start : start + 40]) == prompt for start in range(len(words)))


def test_prompt_longer_than_the_corpus_wraps_around() -> None:
    words = corpus_words()
    length = 2 * len(words) + 5
    prompt = _build(num_entries=1, isl_mean=length, isl_stddev=0.0)[0].prompt.split()
    assert len(prompt) == length
    assert prompt[len(words) :] == prompt[: length - len(words)]  # the corpus repeats every len(words)


def test_lengths_follow_the_distribution_loosely() -> None:
    entries = _build(num_entries=2000, isl_mean=200, isl_stddev=30.0, osl_mean=100, osl_stddev=10.0)
    isl = [e.input_tokens_target for e in entries]
    osl = [e.max_tokens for e in entries]
    assert all(m is not None for m in osl)
    isl_mean = sum(isl) / len(isl)
    osl_mean = sum(m for m in osl if m is not None) / len(osl)
    isl_std = (sum((x - isl_mean) ** 2 for x in isl) / len(isl)) ** 0.5
    assert 195 < isl_mean < 205
    assert 97 < osl_mean < 103
    assert 25 < isl_std < 35
    assert len(set(isl)) > 50


def test_lengths_are_clipped_at_one() -> None:
    entries = _build(num_entries=200, isl_mean=1, isl_stddev=50.0, osl_mean=1, osl_stddev=50.0)
    isl = [e.input_tokens_target for e in entries]
    osl = [e.max_tokens for e in entries]
    assert min(isl) == 1
    assert min(m for m in osl if m is not None) == 1
    assert isl.count(1) > 50  # about half the draws fall below 1
    assert all(len(e.prompt.split()) == e.input_tokens_target for e in entries)


def test_max_tokens_is_none_without_osl_mean() -> None:
    assert all(e.max_tokens is None for e in _build(osl_mean=None))


def test_prompts_do_not_depend_on_output_lengths() -> None:
    with_osl = _build(osl_mean=30)
    without_osl = _build(osl_mean=None)
    assert [e.prompt for e in with_osl] == [e.prompt for e in without_osl]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_entries": -1}, "num_entries"),
        ({"isl_mean": 0}, "isl_mean"),
        ({"isl_stddev": -1.0}, "isl_stddev"),
        ({"osl_mean": 0}, "osl_mean"),
        ({"osl_stddev": float("nan")}, "osl_stddev"),
    ],
)
def test_invalid_arguments_raise(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(**overrides)


def test_inputs_json_round_trip(tmp_path: Path) -> None:
    entries = _build(num_entries=3, osl_mean=None)
    entries[1] = entries[1].model_copy(update={"max_tokens": 9})
    path = tmp_path / "inputs.json"
    extra = {"temperature": 0.5}

    write_inputs_json(path, entries, endpoint_type="chat", model="m", streaming=True, extra_inputs=extra)

    document = orjson.loads(path.read_bytes())
    expected = [
        {"entry_index": e.index, "payload": build_payload("chat", "m", e.prompt, e.max_tokens, True, extra)}
        for e in entries
    ]
    assert document == {"data": expected}
    assert document["data"][1]["payload"]["max_tokens"] == 9
    assert "max_tokens" not in document["data"][0]["payload"]
    assert document["data"][0]["payload"]["messages"] == [{"role": "user", "content": entries[0].prompt}]
    assert path.read_text().startswith('{\n  "data": [')  # indented for people to read


def test_inputs_json_completions_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "inputs.json"
    entry = DatasetEntry(index=4, prompt="a b c", max_tokens=2, input_tokens_target=3)
    write_inputs_json(path, [entry], endpoint_type="completions", model="x", streaming=False, extra_inputs={})
    payload = {"model": "x", "prompt": "a b c", "max_tokens": 2, "stream": False}
    assert orjson.loads(path.read_bytes()) == {"data": [{"entry_index": 4, "payload": payload}]}
    write_inputs_json(path, [], endpoint_type="chat", model="x", streaming=False, extra_inputs={})
    assert orjson.loads(path.read_bytes()) == {"data": []}
