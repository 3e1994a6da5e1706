"""Synthetic prompts of chosen lengths, cut from the bundled English corpus.

"Tokens" here are whitespace-separated words: a prompt with `input_tokens_target` L is exactly L corpus
words. Real tokenizers split text differently, so the input length the benchmark reports is the
server's own `usage.prompt_tokens`, not this target. Lengths become real tokens once a tokenizer
lands, in a later issue.

Determinism: the same arguments (seed included) give the same entries on every machine, since all
randomness comes from one `numpy.random.default_rng(random_seed)`, drawn in a fixed order (input
lengths, then corpus offsets, then output lengths). Prompts do not depend on the output-length options.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import numpy as np
import numpy.typing as npt

from aiperf_hpc.protocol.messages import DatasetEntry

_CORPUS_RESOURCE = "corpus.txt"


def build_synthetic_entries(
    *,
    num_entries: int,
    isl_mean: int,
    isl_stddev: float,
    osl_mean: int | None,
    osl_stddev: float,
    random_seed: int,
) -> list[DatasetEntry]:
    """`num_entries` entries, indexed from 0, with lengths drawn from normal(mean, stddev), rounded to
    the nearest integer and clipped to at least 1. `max_tokens` is None when `osl_mean` is None (the
    server decides). Each prompt starts at its own random word of the corpus and wraps around its end.

    Raises ValueError for a negative count or stddev, or a mean below 1.
    """
    if num_entries < 0:
        raise ValueError(f"num_entries must be >= 0, got {num_entries}")
    _check_length("isl", isl_mean, isl_stddev)
    if osl_mean is not None:
        _check_length("osl", osl_mean, osl_stddev)

    words = corpus_words()
    rng = np.random.default_rng(random_seed)
    input_lengths = _draw_lengths(rng, isl_mean, isl_stddev, num_entries)
    offsets = rng.integers(0, len(words), size=num_entries)
    output_lengths = None if osl_mean is None else _draw_lengths(rng, osl_mean, osl_stddev, num_entries)

    entries: list[DatasetEntry] = []
    for index in range(num_entries):
        length = int(input_lengths[index])
        entries.append(
            DatasetEntry(
                index=index,
                prompt=_take_words(words, int(offsets[index]), length),
                max_tokens=None if output_lengths is None else int(output_lengths[index]),
                input_tokens_target=length,
            )
        )
    return entries


@cache
def corpus_words() -> tuple[str, ...]:
    """The bundled corpus split on whitespace; read once per process."""
    text = files("aiperf_hpc.dataset").joinpath(_CORPUS_RESOURCE).read_text(encoding="utf-8")
    return tuple(text.split())


def _check_length(name: str, mean: int, stddev: float) -> None:
    if mean < 1:
        raise ValueError(f"{name}_mean must be >= 1, got {mean}")
    if not stddev >= 0:  # also rejects NaN
        raise ValueError(f"{name}_stddev must be >= 0, got {stddev}")


def _draw_lengths(rng: np.random.Generator, mean: int, stddev: float, count: int) -> npt.NDArray[np.int64]:
    draws = rng.normal(loc=float(mean), scale=float(stddev), size=count)
    return np.maximum(np.rint(draws), 1).astype(np.int64)


def _take_words(words: tuple[str, ...], start: int, count: int) -> str:
    """`count` words from `start`, wrapping around the end of the corpus as often as needed."""
    taken: list[str] = []
    position = start
    while len(taken) < count:
        end = min(len(words), position + count - len(taken))
        taken.extend(words[position:end])
        position = 0
    return " ".join(taken)
