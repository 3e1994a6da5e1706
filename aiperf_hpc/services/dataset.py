"""DatasetManager: builds the dataset once, writes `inputs.json`, serves it to workers.

Workers ask once at configure time (`DatasetRequest` on the dataset ROUTER) and keep the entries;
credits then carry only an entry index.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import zmq

from aiperf_hpc.dataset.inputs_file import write_inputs_json
from aiperf_hpc.dataset.synthetic import build_synthetic_entries
from aiperf_hpc.errors import DeadlineExceeded
from aiperf_hpc.protocol.messages import Configure, DatasetReply, DatasetRequest
from aiperf_hpc.runtime.bus import send_to
from aiperf_hpc.runtime.service import Service

log = logging.getLogger(__name__)

_IDLE_POLL_S = 1.0


class DatasetManager(Service):
    service_type = "dataset"

    async def configure(self, message: Configure) -> dict[str, int | str]:
        config = message.config
        inputs = config.inputs
        entries = build_synthetic_entries(
            num_entries=inputs.num_entries,
            isl_mean=inputs.isl_mean,
            isl_stddev=inputs.isl_stddev,
            osl_mean=inputs.osl_mean,
            osl_stddev=inputs.osl_stddev,
            random_seed=inputs.random_seed,
        )
        write_inputs_json(
            Path(message.run_dir) / "inputs.json",
            entries,
            endpoint_type=config.endpoint.endpoint_type,
            model=config.endpoint.model,
            streaming=config.endpoint.streaming,
            extra_inputs=config.endpoint.extra_inputs,
        )
        self._reply = DatasetReply(entries=entries)
        self._router = self.bus.socket(zmq.ROUTER, bind=message.addresses.dataset)
        return {"entries": len(entries)}

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        return [self._serve_loop()]

    async def _serve_loop(self) -> None:
        while True:
            try:
                identity, message = await self.bus.recv_routed(
                    self._router, timeout_s=_IDLE_POLL_S, what="dataset requests"
                )
            except DeadlineExceeded:
                continue
            if isinstance(message, DatasetRequest):
                await send_to(self._router, identity, self._reply)
            else:
                log.error("unexpected %s on the dataset socket", type(message).__name__)
