"""DatasetManager: builds the dataset once, writes `inputs.json`, serves it to the other services.

Workers and the timing manager ask once at configure time (`DatasetRequest` on the dataset ROUTER)
and keep the conversations; credits then carry only a conversation and turn index. A bad input file
fails this service with a usage error, which the controller turns into exit code 2.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import zmq

from aiperf_hpc.artifacts import INPUTS_FILE
from aiperf_hpc.config import RunConfig
from aiperf_hpc.dataset.build import build_dataset
from aiperf_hpc.dataset.inputs_file import write_inputs_json
from aiperf_hpc.dataset.prompts import PromptFactory
from aiperf_hpc.dataset.tokenizer import load_tokenizer
from aiperf_hpc.errors import DeadlineExceeded
from aiperf_hpc.protocol.messages import Configure, Conversation, DatasetReply, DatasetRequest
from aiperf_hpc.runtime.bus import bound_endpoint, send_to
from aiperf_hpc.runtime.service import Service

log = logging.getLogger(__name__)


def build_conversations(config: RunConfig) -> tuple[list[Conversation], str]:
    """The run's conversations and the name of the tokenizer that measured them (CPU-bound)."""
    inputs = config.inputs
    if inputs.input_file is None:
        inputs = inputs.model_copy(update={"num_entries": config.synthetic_entries})
    tokenizer = load_tokenizer(inputs.tokenizer)
    factory = PromptFactory(
        tokenizer,
        random_seed=inputs.random_seed,
        prefix_pool_size=inputs.prompt_prefix_pool_size,
        prefix_length=inputs.prompt_prefix_length,
        block_size=inputs.isl_block_size,
    )
    return build_dataset(inputs, tokenizer=tokenizer, factory=factory), tokenizer.name


class DatasetManager(Service):
    service_type = "dataset"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        config = message.config
        loop = asyncio.get_running_loop()
        conversations, tokenizer_name = await loop.run_in_executor(None, build_conversations, config)
        write_inputs_json(
            Path(message.run_dir) / INPUTS_FILE,
            conversations,
            endpoint_type=config.endpoint.endpoint_type,
            model=config.endpoint.model,
            streaming=config.endpoint.streaming,
            extra_inputs=config.endpoint.extra_inputs,
        )
        self._reply = DatasetReply(conversations=conversations)
        self._router = self.bus.socket(zmq.ROUTER, bind=message.addresses.dataset)
        turns = sum(len(c.turns) for c in conversations)
        return {
            "conversations": len(conversations),
            "turns": turns,
            "tokenizer": tokenizer_name,
            "endpoint": bound_endpoint(self._router),
        }

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        return [self._serve_loop()]

    async def _serve_loop(self) -> None:
        while True:
            try:
                identity, message = await self.bus.recv_routed(self._router, timeout_s=1.0, what="dataset requests")
            except DeadlineExceeded:
                continue
            if isinstance(message, DatasetRequest):
                await send_to(self._router, identity, self._reply)
            else:
                log.error("unexpected %s on the dataset socket", type(message).__name__)
