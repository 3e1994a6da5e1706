"""Synthetic conversations: lengths drawn from the input options, prompts from a `PromptFactory`.

Input and output lengths are normal(mean, stddev), rounded to the nearest integer and clipped to at
least 1; a prompt's `input_tokens_target` is its exact length in the factory's tokenizer. Multi-turn
runs (`conversation_num` set) also draw each conversation's turn count (normal, rounded, >= 1) and each
later turn's delay (normal, ms, >= 0).

Determinism: turn counts, input lengths, output lengths and delays each come from their own random
stream derived from `random_seed`, so the same options give the same conversations on every machine,
and prompts do not change when only the output-length or delay options do. Prompt text comes from the
factory, whose generator is separate again.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aiperf_hpc.config import InputConfig
from aiperf_hpc.dataset.prompts import PromptFactory, seeded_rng
from aiperf_hpc.protocol.messages import Conversation, Turn

# Stream ids under `random_seed`; the factory's own streams use 0 and 1.
_STREAM_TURNS = 10
_STREAM_INPUT_LENGTHS = 11
_STREAM_OUTPUT_LENGTHS = 12
_STREAM_DELAYS = 13


def build_synthetic_conversations(inputs: InputConfig, factory: PromptFactory) -> list[Conversation]:
    """`inputs.num_entries` single-turn conversations, or `inputs.conversation_num` multi-turn ones,
    indexed from 0 with session ids `session-<index>`. `max_tokens` is None when `osl_mean` is None
    (the server decides); the first turn's `delay_ms` is None.

    Raises UsageError (from the factory) when the tokenizer cannot make a prompt of a drawn length.
    """
    seed = inputs.random_seed
    if inputs.conversation_num is None:
        turn_counts = np.ones(inputs.num_entries, dtype=np.int64)
    else:
        turn_counts = _draw_counts(
            seeded_rng(seed, _STREAM_TURNS),
            inputs.conversation_turn_mean,
            inputs.conversation_turn_stddev,
            inputs.conversation_num,
        )
    total_turns = int(turn_counts.sum())
    input_lengths = _draw_counts(
        seeded_rng(seed, _STREAM_INPUT_LENGTHS), inputs.isl_mean, inputs.isl_stddev, total_turns
    )
    output_lengths = (
        None
        if inputs.osl_mean is None
        else _draw_counts(seeded_rng(seed, _STREAM_OUTPUT_LENGTHS), inputs.osl_mean, inputs.osl_stddev, total_turns)
    )
    delays_ms = np.maximum(
        seeded_rng(seed, _STREAM_DELAYS).normal(
            inputs.conversation_turn_delay_mean_ms, inputs.conversation_turn_delay_stddev_ms, size=total_turns
        ),
        0.0,
    )

    conversations: list[Conversation] = []
    flat = 0  # index of the current turn across all conversations
    for index, turn_count in enumerate(turn_counts.tolist()):
        turns: list[Turn] = []
        for turn_index in range(turn_count):
            length = int(input_lengths[flat])
            turns.append(
                Turn(
                    prompt=factory.prompt(length),
                    max_tokens=None if output_lengths is None else int(output_lengths[flat]),
                    input_tokens_target=length,
                    delay_ms=None if turn_index == 0 else float(delays_ms[flat]),
                )
            )
            flat += 1
        conversations.append(Conversation(index=index, session_id=f"session-{index}", turns=turns))
    return conversations


def _draw_counts(rng: np.random.Generator, mean: float, stddev: float, size: int) -> npt.NDArray[np.int64]:
    """`size` draws of normal(mean, stddev), rounded to the nearest integer and clipped to at least 1."""
    draws = rng.normal(loc=float(mean), scale=float(stddev), size=size)
    return np.maximum(np.rint(draws), 1).astype(np.int64)
