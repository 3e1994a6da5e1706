"""Readers of the input files: each turns one format into `Conversation`s or raises a one-line
`UsageError` that names the file and the line."""

from aiperf_hpc.dataset.loaders.mooncake_trace import load_mooncake_trace
from aiperf_hpc.dataset.loaders.multi_turn import load_multi_turn
from aiperf_hpc.dataset.loaders.sharegpt import ShareGptLoad, load_sharegpt
from aiperf_hpc.dataset.loaders.single_turn import load_single_turn

__all__ = ["ShareGptLoad", "load_mooncake_trace", "load_multi_turn", "load_sharegpt", "load_single_turn"]
