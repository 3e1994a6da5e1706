"""Refuse a bad `--input-file` or `--tokenizer` path in the CLI, before any service process starts.

The dataset service builds the real dataset later, with the real tokenizer and prompts. This check runs
the same loader on the same file with stand-ins for both, so every problem that does not depend on
token counts (a missing, unreadable or non-UTF-8 file, a line that is not JSON, an unknown field, an
empty file, timestamps out of order) is reported in one line at once, instead of after the services
started (or, under Slurm, after the workers' step did); so is a fixed schedule over a file without
timestamps. A tokenizer given as a local path must hold a
`tokenizer.json`; a hub name is left to the dataset service, which may need the network.

I/O: reads the input file and looks at the tokenizer path.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiperf_hpc.config import InputConfig
from aiperf_hpc.dataset.loaders import load_mooncake_trace, load_multi_turn, load_sharegpt, load_single_turn
from aiperf_hpc.dataset.tokenizer import local_tokenizer_file
from aiperf_hpc.errors import UsageError


class _CharCounter:
    """Counts characters: at least one per non-empty text, as every real tokenizer does."""

    def count(self, text: str) -> int:
        return len(text)


class _NoPrompts:
    """Empty prompts: the loader's checks of lengths and hash ids still run, nothing is generated."""

    def prompt(self, num_tokens: int) -> str:
        return ""

    def prompt_for_hash_ids(self, hash_ids: Sequence[int], num_tokens: int) -> str:
        return ""


def check_inputs(inputs: InputConfig, *, fixed_schedule: bool = False) -> None:
    """Raise UsageError (one line naming the file, and the line when there is one) for an input file
    or tokenizer path the dataset service would refuse, and for a `fixed_schedule` over a file without
    a single timestamp (which the timing service would refuse). Reads the whole input file once."""
    if inputs.tokenizer is not None:
        local_tokenizer_file(inputs.tokenizer)
    path = inputs.input_file
    if path is None:
        return
    counter = _CharCounter()
    if inputs.public_dataset == "sharegpt":
        load_sharegpt(path, tokenizer=counter, max_conversations=1)
        return
    match inputs.custom_dataset_type:
        case "single_turn":
            conversations = load_single_turn(path, tokenizer=counter)
        case "multi_turn":
            conversations = load_multi_turn(path, tokenizer=counter)
        case "mooncake_trace":
            conversations = load_mooncake_trace(
                path, tokenizer=counter, prompts=_NoPrompts(), block_size=inputs.isl_block_size
            )
        case None:
            return  # InputConfig refuses an input file without a format
    if fixed_schedule and all(turn.timestamp_ms is None for c in conversations for turn in c.turns):
        raise UsageError(f"--fixed-schedule needs timestamps in the input file; {path} has none")
