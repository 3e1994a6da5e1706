"""Encode messages to bytes with orjson and decode a frame into the `Message` union in one pass."""

from __future__ import annotations

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from aiperf_hpc.errors import ProtocolError
from aiperf_hpc.protocol.messages import Message

_MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


def encode(message: BaseModel) -> bytes:
    return orjson.dumps(message.model_dump(mode="json"))


def decode(frame: bytes) -> Message:
    """Decode one frame; raises `ProtocolError` naming what was wrong (never a bare ValidationError)."""
    try:
        return _MESSAGE_ADAPTER.validate_json(frame)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "frame"
        raise ProtocolError(f"invalid message ({where}: {first['msg']})") from exc
