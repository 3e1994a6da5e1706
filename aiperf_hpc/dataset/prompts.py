"""Prompts of an exact token length, cut from the bundled corpus.

A prompt is a window of the corpus's tokens, decoded to text. Decoding and re-encoding is not always a
round trip (a window may start or end inside a word, or its pieces may merge differently), so every
prompt is re-counted with the tokenizer and its window widened or narrowed until the count is exact
(`_fit`). If that does not converge, short filler words are appended one at a time, each checked; a
prompt of the wrong length is never returned (UsageError instead, naming the tokenizer).

Windows start at the first token of a word and wrap around the end of the corpus. Text that begins a
prompt has its leading whitespace removed; any other piece (the text after a prefix, every hash-id
block) starts with whitespace, so pieces do not run together.

Determinism: all randomness comes from `numpy.random.default_rng` seeded with `random_seed`, so the same
seed, tokenizer and sequence of calls give the same prompts on every machine. The text of a hash-id
block depends only on the seed and the hash id, not on call order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import numpy.typing as npt

from aiperf_hpc.dataset.tokenizer import Tokenizer, corpus_text
from aiperf_hpc.errors import UsageError

# Widen/narrow a window this many times before moving to the next word start; convergence normally
# takes one or two rounds.
_MAX_FIT_ROUNDS = 8
# Then try this many word starts (the given one and those after it) before the filler words.
_MAX_FIT_STARTS = 4
# Appended one at a time when window sizes alone cannot hit the count; each is one token in most vocabularies.
_FILLERS = (" the", " a", " and", " of", ".", ",", " ", "a")
# Hash-id prompts counted per parallel batch: bounds the memory their candidate texts take.
_BATCH_SIZE = 256
# Distinguishes the random streams derived from one seed.
_STREAM_PROMPTS = 0
_STREAM_HASH_BLOCKS = 1


def seeded_rng(random_seed: int, *stream: int) -> np.random.Generator:
    """A generator for `random_seed` (any int, negative too) and an optional stream id, so that several
    independent streams can come from one user-given seed."""
    return np.random.default_rng([random_seed % 2**64, *(s % 2**64 for s in stream)])


def block_lengths(num_blocks: int, num_tokens: int, block_size: int) -> list[int]:
    """Token lengths of the blocks of a hash-id prompt: `block_size` each, the last one the remainder
    `num_tokens - (num_blocks - 1) * block_size`, at least 1. The prompt's length is their sum, which is
    more than `num_tokens` when the trace gives more hash ids than its length fills."""
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
    last = max(1, num_tokens - (num_blocks - 1) * block_size)
    return [block_size] * (num_blocks - 1) + [last]


class PromptFactory:
    """Makes prompts of exact lengths in `tokenizer`'s tokens.

    `prefix_pool_size` prefixes of `prefix_length` tokens each are drawn at construction (both 0: no
    pool); `prompt()` then starts every prompt with one of them, chosen at random, so servers with
    prefix caching see shared prefixes. Not thread-safe (one random generator).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        random_seed: int,
        prefix_pool_size: int = 0,
        prefix_length: int = 0,
        block_size: int = 512,
    ) -> None:
        if prefix_pool_size < 0 or prefix_length < 0 or (prefix_pool_size > 0) != (prefix_length > 0):
            raise ValueError("prefix_pool_size and prefix_length must both be 0 or both be positive")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self._tokenizer = tokenizer
        self._random_seed = random_seed
        self._block_size = block_size
        self._rng = seeded_rng(random_seed, _STREAM_PROMPTS)
        self._corpus_ids, self._word_starts = _tokenize_corpus(tokenizer, corpus_text())
        self._prefix_length = prefix_length
        self._prefix_starts = [self._random_start() for _ in range(prefix_pool_size)]
        self._prefixes = [self._fit("", start, prefix_length) for start in self._prefix_starts]
        self._prefix_ids = [tokenizer.encode(prefix) for prefix in self._prefixes]
        self._blocks: dict[int, str] = {}

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The prefix pool, each exactly `prefix_length` tokens; empty without a pool."""
        return tuple(self._prefixes)

    def prompt(self, num_tokens: int) -> str:
        """A prompt that counts exactly `num_tokens` tokens (>= 1).

        With a prefix pool: one pool prefix followed by corpus text, `num_tokens` in all (the prefix
        counts towards the length). When `num_tokens <= prefix_length` there is no room for more, and
        the prompt is that prefix's own first `num_tokens` tokens, decoded, so it still shares the
        prefix's start.
        """
        _check_length(num_tokens)
        start = self._random_start()
        if not self._prefixes:
            return self._fit("", start, num_tokens)
        choice = int(self._rng.integers(len(self._prefixes)))
        if num_tokens <= self._prefix_length:
            return self._prefix_head(choice, num_tokens)
        return self._fit(self._prefixes[choice], start, num_tokens)

    def prompt_for_hash_ids(self, hash_ids: Sequence[int], num_tokens: int) -> str:
        """A trace-style prompt: block i is the text of `hash_ids[i]`, `block_lengths(...)` tokens long
        (the whole prompt counts exactly their sum: `num_tokens` unless the hash ids need more).

        Every block but the last is the cached text of its hash id, `block_size` tokens on its own and
        starting with whitespace (the first block too), so prompts that share leading hash ids share
        their leading text exactly, as in the real workload. Blocks are glued as they are; where the
        tokenizer merges tokens across a boundary the blocks' counts no longer add up, and the last
        block (cut from its own hash id's text) is widened or narrowed until the whole prompt's count
        is exact. The last block's text therefore depends on what precedes it.

        Without hash ids this is `prompt(num_tokens)`. Caches one block text per distinct hash id
        (about 4 bytes per token). Costs about one encoding of the whole prompt; see
        `prompts_for_hash_ids` for many at once.
        """
        _check_length(num_tokens)
        if not hash_ids:
            return self.prompt(num_tokens)
        lead, start, total, lead_count = self._hash_parts(hash_ids, num_tokens)
        return self._fit(lead, start, total, begins_prompt=False, lead_count=lead_count)

    def prompts_for_hash_ids(self, requests: Sequence[tuple[Sequence[int], int]]) -> list[str]:
        """`prompt_for_hash_ids(hash_ids, num_tokens)` for each request, in order, with the same results
        as calling it in a loop, but faster: each prompt's first candidate is counted in parallel
        batches by the Rust library, and only the rare miss is fitted one by one."""
        prompts: list[str] = []
        for offset in range(0, len(requests), _BATCH_SIZE):
            prompts.extend(self._hash_batch(requests[offset : offset + _BATCH_SIZE]))
        return prompts

    def _hash_batch(self, requests: Sequence[tuple[Sequence[int], int]]) -> list[str]:
        candidates: list[tuple[str, int] | None] = []
        for hash_ids, num_tokens in requests:
            _check_length(num_tokens)
            if not hash_ids:
                candidates.append(None)  # consumes the shared generator: made in order below
                continue
            lead, start, total, lead_count = self._hash_parts(hash_ids, num_tokens)
            position = int(self._word_starts[start])
            candidates.append((self._joined(lead, position, False, max(1, total - lead_count)), total))
        counts = iter(self._tokenizer.count_batch([c[0] for c in candidates if c is not None]))
        prompts: list[str] = []
        for (hash_ids, num_tokens), candidate in zip(requests, candidates, strict=True):
            if candidate is not None and next(counts) == candidate[1]:
                prompts.append(candidate[0])  # what `_fit`'s first try returns
            else:
                prompts.append(self.prompt_for_hash_ids(hash_ids, num_tokens))
        return prompts

    def _hash_parts(self, hash_ids: Sequence[int], num_tokens: int) -> tuple[str, int, int, int]:
        """The cached blocks before the last, the last block's word start, the prompt's exact length and
        the blocks' nominal length before the last (trusted only to size the first try)."""
        lengths = block_lengths(len(hash_ids), num_tokens, self._block_size)
        lead = "".join(self._block_text(hash_id) for hash_id in hash_ids[:-1])
        return lead, self._block_start(hash_ids[-1]), sum(lengths), sum(lengths[:-1])

    def _prefix_head(self, choice: int, num_tokens: int) -> str:
        """The first `num_tokens` tokens' worth of prefix `choice`: its own tokens, decoded (falling back to
        corpus text from where the prefix starts when that does not count right)."""
        ids = self._prefix_ids[choice]
        fitted, _ = self._fit_widths(lambda width: self._tokenizer.decode(ids[:width]), num_tokens, num_tokens, None)
        return fitted if fitted is not None else self._fit("", self._prefix_starts[choice], num_tokens)

    def _block_text(self, hash_id: int) -> str:
        text = self._blocks.get(hash_id)
        if text is None:
            text = self._fit("", self._block_start(hash_id), self._block_size, begins_prompt=False)
            self._blocks[hash_id] = text
        return text

    def _block_start(self, hash_id: int) -> int:
        """The word start (an index into `_word_starts`) that `hash_id`'s text begins at."""
        return int(seeded_rng(self._random_seed, _STREAM_HASH_BLOCKS, hash_id).integers(len(self._word_starts)))

    def _random_start(self) -> int:
        """A random word start, as an index into `_word_starts`."""
        return int(self._rng.integers(len(self._word_starts)))

    def _window(self, position: int, num_tokens: int) -> str:
        ids = np.take(self._corpus_ids, np.arange(position, position + num_tokens), mode="wrap")
        return self._tokenizer.decode(ids.tolist())

    def _fit(
        self, lead: str, start: int, total: int, *, begins_prompt: bool | None = None, lead_count: int | None = None
    ) -> str:
        """`lead` plus corpus text from word start number `start`, exactly `total` tokens in all.

        When the text begins the prompt (default: when there is no lead) its leading whitespace is
        dropped; otherwise it starts with whitespace, so it does not run into what precedes it. Tries
        the window widths the counts suggest, then the next few word starts, then filler words. A given
        `lead_count` (the lead's expected count) saves counting the lead, and only sizes the first
        window. Raises UsageError when nothing fits.
        """
        if begins_prompt is None:
            begins_prompt = not lead
        if lead_count is None:
            lead_count = self._tokenizer.count(lead) if lead else 0
        best_below: tuple[int, str] | None = None
        for attempt in range(_MAX_FIT_STARTS):
            position = int(self._word_starts[(start + attempt) % len(self._word_starts)])
            text_for = partial(self._joined, lead, position, begins_prompt)
            fitted, best_below = self._fit_widths(text_for, max(1, total - lead_count), total, best_below)
            if fitted is not None:
                return fitted
        if best_below is None and lead:
            actual = self._tokenizer.count(lead)
            best_below = (actual, lead) if actual < total else None
        return self._pad(best_below, total)

    def _fit_widths(
        self,
        text_for: Callable[[int], str],
        width: int,
        total: int,
        best_below: tuple[int, str] | None,
    ) -> tuple[str | None, tuple[int, str] | None]:
        """Try `text_for(width)`, moving `width` by the count's error, until the count is `total`; returns
        the text (None when the widths start to repeat) and the longest text seen below `total`."""
        tried: set[int] = set()
        for _ in range(_MAX_FIT_ROUNDS):
            text = text_for(width)
            got = self._tokenizer.count(text)
            if got == total:
                return text, best_below
            if got < total and (best_below is None or got > best_below[0]):
                best_below = (got, text)
            tried.add(width)
            width = max(1, width + total - got)
            if width in tried:
                break
        return None, best_below

    def _joined(self, lead: str, position: int, begins_prompt: bool, width: int) -> str:
        """`lead` and `width` corpus tokens from `position`, decoded and joined as `_fit` describes."""
        tail = self._window(position, width)
        if begins_prompt:
            tail = tail.lstrip()
        elif not tail[:1].isspace() and not lead[-1:].isspace():
            tail = " " + tail
        return lead + tail

    def _pad(self, best_below: tuple[int, str] | None, total: int) -> str:
        """Append filler words to the longest text found below `total` until the count is exact."""
        got, text = best_below if best_below is not None else (0, "")
        while got < total:
            for filler in _FILLERS:
                candidate = text + filler if text else filler.lstrip() or filler
                candidate_count = self._tokenizer.count(candidate)
                if got < candidate_count <= total:
                    got, text = candidate_count, candidate
                    break
            else:
                raise UsageError(
                    f"tokenizer {self._tokenizer.name!r} cannot make a prompt of exactly {total} tokens "
                    f"(stuck at {got})"
                )
        return text


def _check_length(num_tokens: int) -> None:
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")


def _tokenize_corpus(tokenizer: Tokenizer, text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The corpus's token ids and the positions of the tokens that start a word: tokens whose text
    begins (after optional whitespace) with a letter or digit, at the start of the corpus or right after
    whitespace. Falls back to every position for a tokenizer where none qualify."""
    ids, offsets = tokenizer.encode_with_offsets(text)
    starts = [position for position, (begin, end) in enumerate(offsets) if _starts_word(text, begin, end)]
    if not ids:
        raise UsageError(f"tokenizer {tokenizer.name!r} encodes the corpus to no tokens")
    word_starts = np.asarray(starts if starts else range(len(ids)), dtype=np.int64)
    return np.asarray(ids, dtype=np.int64), word_starts


def _starts_word(text: str, begin: int, end: int) -> bool:
    piece = text[begin:end]
    stripped = piece.lstrip()
    if not stripped or not stripped[0].isalnum():
        return False
    return piece[0].isspace() or begin == 0 or text[begin - 1].isspace()
