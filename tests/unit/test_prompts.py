from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from aiperf_hpc.dataset.prompts import PromptFactory, block_lengths, seeded_rng
from aiperf_hpc.dataset.tokenizer import Tokenizer, corpus_text, load_tokenizer
from aiperf_hpc.errors import UsageError

LENGTHS = [1, 2, 7, 100, 550, 3000]


@pytest.fixture(scope="session")
def bundled_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tokenizer-cache")


@pytest.fixture(scope="session")
def bundled(bundled_cache_dir: Path) -> Tokenizer:
    return load_tokenizer(None, cache_dir=bundled_cache_dir)


@pytest.fixture
def bundled_json(bundled: Tokenizer, bundled_cache_dir: Path) -> str:
    """The bundled tokenizer's JSON, as cached, to build other wrappers around the same vocabulary."""
    return (bundled_cache_dir / f"{bundled.name.removeprefix('bundled:')}.json").read_text()


def _metaspace_bpe() -> tokenizers.Tokenizer:
    """A SentencePiece-like tokenizer (Llama 2 style): spaces become '▁', decoding strips the first."""
    backend = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=["<unk>"], show_progress=False)
    backend.train_from_iterator([corpus_text()], trainer=trainer)
    return backend


def _wordpiece() -> tokenizers.Tokenizer:
    """A BERT-like tokenizer: lower-cases, and decoding does not round-trip punctuation spacing."""
    backend = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer()
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=1500, special_tokens=["[UNK]"], show_progress=False)
    backend.train_from_iterator([corpus_text()], trainer=trainer)
    return backend


class _EvenCounts(Tokenizer):
    """A tokenizer whose every count is even, so odd lengths cannot be made."""

    __slots__ = ()

    def count(self, text: str) -> int:
        return 2 * super().count(text)


@pytest.mark.parametrize("num_tokens", LENGTHS)
def test_prompts_have_exact_token_counts(bundled: Tokenizer, num_tokens: int) -> None:
    factory = PromptFactory(bundled, random_seed=1)
    for _ in range(5):
        assert bundled.count(factory.prompt(num_tokens)) == num_tokens


def test_every_small_length_is_exact(bundled: Tokenizer) -> None:
    factory = PromptFactory(bundled, random_seed=2)
    for num_tokens in range(1, 80):
        assert bundled.count(factory.prompt(num_tokens)) == num_tokens


def test_prompts_are_corpus_text(bundled: Tokenizer) -> None:
    factory = PromptFactory(bundled, random_seed=3)
    wrapped = corpus_text() * 2  # windows wrap around the corpus end
    for _ in range(20):
        prompt = factory.prompt(40)
        assert prompt in wrapped
        assert prompt == prompt.lstrip()
        assert prompt[0].isalnum()  # starts at a word


def test_a_prompt_longer_than_the_corpus_wraps_around(bundled: Tokenizer) -> None:
    corpus_tokens = bundled.count(corpus_text())
    factory = PromptFactory(bundled, random_seed=4)
    prompt = factory.prompt(corpus_tokens + 500)
    assert bundled.count(prompt) == corpus_tokens + 500
    assert len(prompt) > len(corpus_text())


@pytest.mark.parametrize("make", [_metaspace_bpe, _wordpiece], ids=["metaspace-bpe", "wordpiece"])
def test_other_tokenizer_families_are_exact_too(make: object) -> None:
    assert callable(make)
    tokenizer = Tokenizer("test", make())
    factory = PromptFactory(tokenizer, random_seed=5, prefix_pool_size=2, prefix_length=9, block_size=16)
    for num_tokens in [*range(1, 30), 100, 550]:
        assert tokenizer.count(factory.prompt(num_tokens)) == num_tokens
    for hash_ids, num_tokens in [([1], 16), ([1, 2, 3], 40), ([1, 2, 4, 5], 5)]:
        expected = sum(block_lengths(len(hash_ids), num_tokens, 16))
        assert tokenizer.count(factory.prompt_for_hash_ids(hash_ids, num_tokens)) == expected


def test_same_seed_same_prompts(bundled: Tokenizer) -> None:
    def run(seed: int) -> list[str]:
        factory = PromptFactory(bundled, random_seed=seed, prefix_pool_size=3, prefix_length=20)
        return [factory.prompt(n) for n in (5, 50, 500)] + [factory.prompt_for_hash_ids([1, 2], 600)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_negative_seeds_work(bundled: Tokenizer) -> None:
    assert PromptFactory(bundled, random_seed=-1).prompt(30) == PromptFactory(bundled, random_seed=-1).prompt(30)
    assert seeded_rng(-1).integers(1 << 30) != seeded_rng(1).integers(1 << 30)


def test_prompts_of_one_length_differ(bundled: Tokenizer) -> None:
    factory = PromptFactory(bundled, random_seed=9)
    assert len({factory.prompt(100) for _ in range(10)}) == 10


def test_prefix_pool_prompts_start_with_a_pool_prefix(bundled: Tokenizer) -> None:
    factory = PromptFactory(bundled, random_seed=10, prefix_pool_size=4, prefix_length=30)
    prefixes = factory.prefixes
    assert len(prefixes) == 4
    assert len(set(prefixes)) == 4
    assert [bundled.count(p) for p in prefixes] == [30] * 4

    used: set[str] = set()
    for num_tokens in [31, 32, 40, 100, 550] * 8:
        prompt = factory.prompt(num_tokens)
        assert bundled.count(prompt) == num_tokens
        [prefix] = [p for p in prefixes if prompt.startswith(p)]
        used.add(prefix)
        assert prompt[len(prefix)].isspace()  # the rest does not run into the prefix
    assert len(used) > 1


def test_a_prompt_no_longer_than_the_prefix_is_the_prefix_start(bundled: Tokenizer) -> None:
    factory = PromptFactory(bundled, random_seed=11, prefix_pool_size=2, prefix_length=30)
    for num_tokens in (30, 29, 10, 2, 1):
        prompt = factory.prompt(num_tokens)
        assert bundled.count(prompt) == num_tokens
        assert any(p.startswith(prompt) for p in factory.prefixes)
    assert factory.prompt(30) in factory.prefixes


def test_no_pool_without_options(bundled: Tokenizer) -> None:
    assert PromptFactory(bundled, random_seed=0).prefixes == ()


def test_hash_id_prompts_share_blocks_of_shared_ids(bundled: Tokenizer) -> None:
    factory = PromptFactory(bundled, random_seed=12, block_size=32)
    # A one-block prompt of block_size tokens is that hash id's block text, as cached.
    block_1 = factory.prompt_for_hash_ids([1], 32)
    block_2 = factory.prompt_for_hash_ids([2], 32)
    assert bundled.count(block_1) == bundled.count(block_2) == 32

    first = factory.prompt_for_hash_ids([1, 2, 3], 90)
    second = factory.prompt_for_hash_ids([1, 2, 4], 90)

    shared = block_1 + block_2
    assert first.startswith(shared)
    assert second.startswith(shared)
    assert first[len(shared) :] != second[len(shared) :]
    assert bundled.count(first) == bundled.count(second) == 90


def test_hash_id_blocks_do_not_depend_on_call_order(bundled: Tokenizer) -> None:
    one = PromptFactory(bundled, random_seed=13, block_size=16)
    other = PromptFactory(bundled, random_seed=13, block_size=16)
    other.prompt(50)
    other.prompt_for_hash_ids([7, 8, 9], 48)
    assert one.prompt_for_hash_ids([1, 2, 3], 40) == other.prompt_for_hash_ids([1, 2, 3], 40)
    other_seed = PromptFactory(bundled, random_seed=14, block_size=16)
    assert other_seed.prompt_for_hash_ids([1], 16) != one.prompt_for_hash_ids([1], 16)


@pytest.mark.parametrize(
    ("hash_ids", "num_tokens", "expected"),
    [
        ([5], 1, 1),
        ([5], 300, 300),
        ([5, 6], 17, 17),
        ([5, 6, 7], 48, 48),
        ([5, 6, 7], 33, 33),
        ([5, 6, 7], 5, 33),  # more hash ids than the length fills: the last block still gets one token
    ],
)
def test_hash_id_prompt_lengths_are_exact(
    bundled: Tokenizer, hash_ids: list[int], num_tokens: int, expected: int
) -> None:
    factory = PromptFactory(bundled, random_seed=15, block_size=16)
    assert sum(block_lengths(len(hash_ids), num_tokens, 16)) == expected
    assert bundled.count(factory.prompt_for_hash_ids(hash_ids, num_tokens)) == expected


def test_many_hash_id_prompts_are_exact(bundled: Tokenizer) -> None:
    factory = PromptFactory(bundled, random_seed=16, block_size=8)
    for length in range(1, 40):
        hash_ids = list(range(length % 5 + 1))
        expected = sum(block_lengths(len(hash_ids), length, 8))
        assert bundled.count(factory.prompt_for_hash_ids(hash_ids, length)) == expected


class _BatchMisses(Tokenizer):
    """Counts batches wrongly, so every batched first try misses and takes the one-by-one path."""

    __slots__ = ()

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        return [-1] * len(texts)


_REQUESTS: list[tuple[list[int], int]] = [
    ([1, 2, 3], 40),
    ([], 25),
    ([1, 2, 4], 33),
    ([9], 3),
    ([], 7),
    ([1, 2, 3, 5, 6], 70),
    ([7, 8], 5),
]


@pytest.mark.parametrize("batch_tokenizer", [Tokenizer, _BatchMisses], ids=["batch-hits", "batch-misses"])
def test_batched_hash_id_prompts_equal_one_by_one(
    bundled: Tokenizer, bundled_json: str, batch_tokenizer: type[Tokenizer]
) -> None:
    one_by_one = PromptFactory(bundled, random_seed=19, block_size=16, prefix_pool_size=2, prefix_length=4)
    batched_tokenizer = batch_tokenizer("same", tokenizers.Tokenizer.from_str(bundled_json))
    batched = PromptFactory(batched_tokenizer, random_seed=19, block_size=16, prefix_pool_size=2, prefix_length=4)
    expected = [one_by_one.prompt_for_hash_ids(hash_ids, n) for hash_ids, n in _REQUESTS]
    assert batched.prompts_for_hash_ids(_REQUESTS) == expected
    assert batched.prompt(30) == one_by_one.prompt(30)  # the shared generator was used alike


def test_block_lengths() -> None:
    assert block_lengths(1, 700, 512) == [700]
    assert block_lengths(3, 1100, 512) == [512, 512, 76]
    assert block_lengths(3, 1024, 512) == [512, 512, 1]
    with pytest.raises(ValueError, match="num_blocks"):
        block_lengths(0, 10, 512)


def test_no_hash_ids_is_a_plain_prompt(bundled: Tokenizer) -> None:
    one = PromptFactory(bundled, random_seed=17)
    other = PromptFactory(bundled, random_seed=17)
    assert one.prompt_for_hash_ids([], 50) == other.prompt(50)


def test_an_impossible_length_raises_instead_of_lying() -> None:
    even = _EvenCounts("even-counts", _metaspace_bpe())
    factory = PromptFactory(even, random_seed=18)
    assert even.count(factory.prompt(10)) == 10
    with pytest.raises(UsageError, match="cannot make a prompt of exactly 11 tokens"):
        factory.prompt(11)


def test_invalid_arguments(bundled: Tokenizer) -> None:
    factory = PromptFactory(bundled, random_seed=0)
    with pytest.raises(ValueError, match="num_tokens"):
        factory.prompt(0)
    with pytest.raises(ValueError, match="num_tokens"):
        factory.prompt_for_hash_ids([1], 0)
    with pytest.raises(ValueError, match="prefix_pool_size"):
        PromptFactory(bundled, random_seed=0, prefix_pool_size=2)
    with pytest.raises(ValueError, match="block_size"):
        PromptFactory(bundled, random_seed=0, block_size=0)
