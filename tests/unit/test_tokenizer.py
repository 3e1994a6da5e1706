from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from aiperf_hpc.dataset.tokenizer import (
    Tokenizer,
    bundled_tokenizer_name,
    corpus_text,
    default_cache_dir,
    load_tokenizer,
)
from aiperf_hpc.errors import UsageError


@pytest.fixture(scope="session")
def bundled_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tokenizer-cache")


@pytest.fixture(scope="session")
def bundled(bundled_cache_dir: Path) -> Tokenizer:
    return load_tokenizer(None, cache_dir=bundled_cache_dir)


def _tiny_backend(vocab_size: int = 300) -> tokenizers.Tokenizer:
    backend = tokenizers.Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    backend.train_from_iterator([corpus_text()[:5000]], trainer=trainer)
    return backend


def _cached_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.iterdir())


def test_bundled_tokenizer_is_named_by_the_corpus_hash(bundled: Tokenizer) -> None:
    assert bundled.name == bundled_tokenizer_name()
    assert bundled.name.startswith("bundled:bpe-4k-")
    assert len(bundled.name) == len("bundled:bpe-4k-") + 12


def test_bundled_tokenizer_is_a_4k_vocabulary_bpe(bundled: Tokenizer) -> None:
    ids = bundled.encode(corpus_text())
    assert max(ids) < 4000
    assert len(set(ids)) > 2000  # whole words, not bytes
    assert len(ids) < len(corpus_text()) / 3


def test_bundled_tokenizer_is_cached_under_the_corpus_hash(bundled: Tokenizer, bundled_cache_dir: Path) -> None:
    key = bundled.name.removeprefix("bundled:")
    assert _cached_files(bundled_cache_dir) == [bundled_cache_dir / f"{key}.json"]  # no temporary left behind
    again = load_tokenizer(None, cache_dir=bundled_cache_dir)
    text = corpus_text()[:3000]
    assert again.encode(text) == bundled.encode(text)


def test_a_second_load_reads_the_cache(bundled: Tokenizer, tmp_path: Path) -> None:
    # A different (tiny) tokenizer planted under the cache name proves the file is what gets loaded.
    planted = tmp_path / f"{bundled.name.removeprefix('bundled:')}.json"
    _tiny_backend().save(str(planted))
    loaded = load_tokenizer(None, cache_dir=tmp_path)
    text = corpus_text()[:2000]
    assert loaded.name == bundled.name
    assert loaded.encode(text) == Tokenizer("tiny", _tiny_backend()).encode(text)
    assert loaded.encode(text) != bundled.encode(text)


def test_training_is_deterministic(bundled_cache_dir: Path, tmp_path: Path) -> None:
    load_tokenizer(None, cache_dir=tmp_path)
    [first] = _cached_files(bundled_cache_dir)
    [second] = _cached_files(tmp_path)
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()


def test_processes_racing_to_fill_the_cache_all_load_it(bundled: Tokenizer, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # forking after the Rust thread pool started is unsafe
    with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
        names = list(pool.map(_load_name, [tmp_path] * 3))
    assert names == [bundled.name] * 3
    assert [p.name for p in _cached_files(tmp_path)] == [f"{bundled.name.removeprefix('bundled:')}.json"]
    assert load_tokenizer(None, cache_dir=tmp_path).encode("The river") == bundled.encode("The river")


def _load_name(cache_dir: Path) -> str:
    return load_tokenizer(None, cache_dir=cache_dir).name


def test_a_corrupt_cache_file_is_replaced(bundled: Tokenizer, bundled_cache_dir: Path, tmp_path: Path) -> None:
    [good] = _cached_files(bundled_cache_dir)
    corrupt = tmp_path / good.name
    corrupt.write_text("{not json")
    loaded = load_tokenizer(None, cache_dir=tmp_path)
    assert loaded.encode("The river began") == bundled.encode("The river began")
    assert corrupt.read_bytes() == good.read_bytes()


def test_an_unwritable_cache_trains_in_memory(bundled: Tokenizer, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    loaded = load_tokenizer(None, cache_dir=blocker / "cache")  # cannot be created under a file
    assert loaded.encode(corpus_text()[:500]) == bundled.encode(corpus_text()[:500])
    assert _cached_files(tmp_path) == [blocker]


def test_default_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIPERF_HPC_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("AIPERF_HPC_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "aiperf-hpc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "aiperf-hpc"


def test_default_cache_dir_is_used_without_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIPERF_HPC_CACHE_DIR", str(tmp_path))
    loaded = load_tokenizer(None)
    assert _cached_files(tmp_path) == [tmp_path / f"{loaded.name.removeprefix('bundled:')}.json"]


def test_round_trip_on_corpus_text(bundled: Tokenizer) -> None:
    text = corpus_text()
    ids = bundled.encode(text)
    assert bundled.decode(ids) == text
    assert bundled.count(text) == len(ids)
    paragraphs = text.split("\n\n")[:5]
    assert bundled.count_batch(paragraphs) == [bundled.count(p) for p in paragraphs]


def test_encode_with_offsets_maps_tokens_to_text(bundled: Tokenizer) -> None:
    text = "The river began as a thin thread"
    ids, offsets = bundled.encode_with_offsets(text)
    assert ids == bundled.encode(text)
    assert [text[begin:end] for begin, end in offsets] == ["The", " river", " began", " as", " a", " thin", " thread"]


def test_load_a_local_directory_and_file(tmp_path: Path) -> None:
    backend = _tiny_backend()
    backend.save(str(tmp_path / "tokenizer.json"))
    text = corpus_text()[:1000]
    expected = backend.encode(text, add_special_tokens=False).ids

    by_dir = load_tokenizer(str(tmp_path))
    by_file = load_tokenizer(str(tmp_path / "tokenizer.json"))

    assert by_dir.name == str(tmp_path)
    assert by_file.name == str(tmp_path / "tokenizer.json")
    assert by_dir.encode(text) == expected
    assert by_file.encode(text) == expected
    assert by_dir.decode(expected) == text


def test_truncation_and_padding_in_a_file_are_ignored(tmp_path: Path) -> None:
    backend = _tiny_backend()
    backend.enable_truncation(max_length=8)
    backend.enable_padding(length=64)
    backend.save(str(tmp_path / "tokenizer.json"))
    loaded = load_tokenizer(str(tmp_path))
    text = corpus_text()[:400]
    assert loaded.count(text) > 64
    assert loaded.count("The") < 8


def test_special_tokens_are_not_added(tmp_path: Path) -> None:
    backend = _tiny_backend()
    backend.add_special_tokens(["<s>"])
    backend.post_processor = tokenizers.processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", backend.token_to_id("<s>"))]
    )
    backend.save(str(tmp_path / "tokenizer.json"))
    loaded = load_tokenizer(str(tmp_path))
    assert loaded.encode("river") == backend.encode("river", add_special_tokens=False).ids
    assert loaded.count("river") == len(backend.encode("river").ids) - 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root, "has no tokenizer.json"),
        (lambda root: root / "missing" / "tokenizer.json", "no such file or directory"),
        (lambda root: root / "broken.json", "not a valid tokenizer file"),
    ],
)
def test_bad_local_paths_raise_usage_error(tmp_path: Path, make: object, message: str) -> None:
    (tmp_path / "broken.json").write_text('{"version": "1.0"}')
    assert callable(make)
    with pytest.raises(UsageError, match=message) as caught:
        load_tokenizer(str(make(tmp_path)))
    assert "\n" not in str(caught.value)


def test_an_unreachable_hub_name_raises_one_clean_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError) as caught:
        load_tokenizer("no-such-org/no-such-model-xyz")
    message = str(caught.value)
    assert message.startswith("cannot load tokenizer 'no-such-org/no-such-model-xyz': ")
    assert message.endswith("; pass a local directory with tokenizer.json")
    assert "\n" not in message
