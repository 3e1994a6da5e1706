"""`inputs.json`: the request body of every turn of every conversation, for inspection and replay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from aiperf_hpc.config import EndpointType
from aiperf_hpc.endpoints.payload import build_payload
from aiperf_hpc.protocol.messages import Conversation


def write_inputs_json(
    path: Path,
    conversations: Sequence[Conversation],
    *,
    endpoint_type: EndpointType,
    model: str,
    streaming: bool,
    extra_inputs: Mapping[str, Any],
) -> None:
    """Write, as indented JSON,

    `{"data": [{"conversation_index", "session_id", "turns": [{"turn_index", "payload", "delay_ms",
    "timestamp_ms"}, ...]}, ...]}`.

    Each payload comes from `build_payload`, the function workers send with, for that turn's prompt
    alone: later turns go out with the earlier turns and answers as chat history, which is only known
    during the run, so the file shows each turn as a first turn would be sent. Replaces an existing file;
    raises OSError when `path` cannot be written.
    """
    document = {
        "data": [
            {
                "conversation_index": conversation.index,
                "session_id": conversation.session_id,
                "turns": [
                    {
                        "turn_index": turn_index,
                        "payload": build_payload(
                            endpoint_type,
                            model,
                            prompt=turn.prompt,
                            max_tokens=turn.max_tokens,
                            streaming=streaming,
                            extra_inputs=extra_inputs,
                        ),
                        "delay_ms": turn.delay_ms,
                        "timestamp_ms": turn.timestamp_ms,
                    }
                    for turn_index, turn in enumerate(conversation.turns)
                ],
            }
            for conversation in conversations
        ]
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
