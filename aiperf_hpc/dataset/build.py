"""The run's conversations: synthetic prompts, or the `--input-file` read by its format's loader."""

from __future__ import annotations

import logging

from aiperf_hpc.config import InputConfig
from aiperf_hpc.dataset.loaders import load_mooncake_trace, load_multi_turn, load_sharegpt, load_single_turn
from aiperf_hpc.dataset.prompts import PromptFactory
from aiperf_hpc.dataset.synthetic import build_synthetic_conversations
from aiperf_hpc.dataset.tokenizer import Tokenizer
from aiperf_hpc.errors import UsageError
from aiperf_hpc.protocol.messages import Conversation

log = logging.getLogger(__name__)


def build_dataset(inputs: InputConfig, *, tokenizer: Tokenizer, factory: PromptFactory) -> list[Conversation]:
    """The conversations to send, indexed from 0. A ShareGPT file gives at most `inputs.num_entries`
    of them; the other files give all their entries.

    Raises UsageError for an input file that cannot be read or has a bad entry.
    """
    path = inputs.input_file
    if path is None:
        return build_synthetic_conversations(inputs, factory)
    if inputs.public_dataset == "sharegpt":
        loaded = load_sharegpt(path, tokenizer=tokenizer, max_conversations=inputs.num_entries)
        if loaded.skipped:
            log.info("%s: skipped %d unusable ShareGPT items", path, loaded.skipped)
        return loaded.conversations
    match inputs.custom_dataset_type:
        case "single_turn":
            return load_single_turn(path, tokenizer=tokenizer)
        case "multi_turn":
            return load_multi_turn(path, tokenizer=tokenizer)
        case "mooncake_trace":
            return load_mooncake_trace(path, tokenizer=tokenizer, prompts=factory, block_size=inputs.isl_block_size)
        case None:
            raise UsageError("--input-file needs --custom-dataset-type or --public-dataset")
