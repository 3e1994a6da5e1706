"""`--custom-dataset-type mooncake_trace`: one request per JSONL line, replayed in file order.

A line (the Mooncake trace format, as AIPerf reads it): `{"timestamp": 3052, "input_length": 7234,
"output_length": 794, "hash_ids": [0, 28, 29]}`. `input_length` tokens of prompt are generated,
block by block from `hash_ids` when given (equal ids give equal blocks, so prefixes are shared as in
the real workload); `text_input` instead of `input_length` is sent as written. `timestamp` is in ms
from the start of the trace; every line has one or none, in non-decreasing order.
"""

from __future__ import annotations

from pathlib import Path

from aiperf_hpc.dataset.loaders.common import Fields, PromptSource, TokenCounter, check_timestamps, iter_jsonl
from aiperf_hpc.errors import UsageError
from aiperf_hpc.protocol.messages import Conversation, Turn

FIELDS = frozenset({"type", "timestamp", "input_length", "output_length", "hash_ids", "text_input"})


def load_mooncake_trace(
    path: Path, *, tokenizer: TokenCounter, prompts: PromptSource, block_size: int
) -> list[Conversation]:
    """The trace's lines as one-turn conversations indexed from 0, named "session-<index>".
    `block_size` is the tokens per hash id (`--isl-block-size`).

    Raises UsageError (one line, naming file and line) for any bad input, a prompt the factory
    refuses included."""
    parsed = [(fields, _read_line(fields, tokenizer, prompts, block_size)) for fields in iter_jsonl(path)]
    check_timestamps([(fields, turn.timestamp_ms) for fields, turn in parsed])
    return [
        Conversation(index=index, session_id=f"session-{index}", turns=[turn]) for index, (_, turn) in enumerate(parsed)
    ]


def _read_line(fields: Fields, tokenizer: TokenCounter, prompts: PromptSource, block_size: int) -> Turn:
    fields.check_names(FIELDS, "mooncake_trace lines")
    fields.check_type("mooncake_trace")
    if fields.has("text_input"):
        if fields.has("input_length") or fields.has("hash_ids"):
            raise fields.error("'text_input' cannot be used with 'input_length' or 'hash_ids'")
        prompt = fields.required_str("text_input")
        if not prompt.strip():
            raise fields.error("'text_input' is empty")
        input_tokens = tokenizer.count(prompt)
    else:
        if not fields.has("input_length"):
            raise fields.error("'input_length' is missing (or give 'text_input')")
        input_tokens = fields.required_positive_int("input_length")
        hash_ids = fields.optional_int_list("hash_ids")
        if hash_ids:
            _check_blocks(fields, input_tokens, len(hash_ids), block_size)
        try:
            prompt = prompts.prompt_for_hash_ids(hash_ids, input_tokens) if hash_ids else prompts.prompt(input_tokens)
        except (ValueError, UsageError) as exc:  # e.g. a length the tokenizer cannot hit exactly
            raise fields.error(str(exc)) from None
    return Turn(
        prompt=prompt,
        max_tokens=fields.optional_positive_int("output_length"),
        input_tokens_target=input_tokens,
        timestamp_ms=fields.optional_ms("timestamp"),
    )


def _check_blocks(fields: Fields, input_tokens: int, num_blocks: int, block_size: int) -> None:
    """Every block but the last is full, as in AIPerf: a trace whose lengths and hash ids disagree was
    made for another block size, and replaying it would share the wrong prefixes."""
    low, high = (num_blocks - 1) * block_size + 1, num_blocks * block_size
    if not low <= input_tokens <= high:
        raise fields.error(
            f"'input_length' {input_tokens} does not fit {num_blocks} 'hash_ids' blocks of {block_size} tokens "
            f"(expected {low}..{high}; is --isl-block-size the trace's block size?)"
        )
