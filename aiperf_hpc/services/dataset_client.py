"""The one way a service gets the dataset: one `DatasetRequest` to the dataset manager, bounded."""

from __future__ import annotations

import zmq

from aiperf_hpc.errors import ServiceError
from aiperf_hpc.protocol.messages import Conversation, DatasetReply, DatasetRequest
from aiperf_hpc.runtime.bus import Bus, send

DATASET_TIMEOUT_S = 120.0  # building a large dataset (tokenizing a big file) can take a while


async def fetch_conversations(bus: Bus, address: str, identity: str) -> list[Conversation]:
    sock = bus.socket(zmq.DEALER, connect=address, identity=identity)
    await send(sock, DatasetRequest(worker_id=identity))
    reply = await bus.recv(sock, timeout_s=DATASET_TIMEOUT_S, what="the dataset from the dataset manager")
    if not isinstance(reply, DatasetReply) or not reply.conversations:
        raise ServiceError("the dataset manager sent no conversations")
    return reply.conversations
