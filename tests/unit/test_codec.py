from __future__ import annotations

import pytest

from aiperf_hpc.config import EndpointConfig, RunConfig
from aiperf_hpc.errors import ProtocolError
from aiperf_hpc.protocol.addresses import ipc_addresses
from aiperf_hpc.protocol.codec import decode, encode
from aiperf_hpc.protocol.messages import (
    Configure,
    CreditDrop,
    RecordBatch,
    Register,
    RequestRecord,
)


@pytest.mark.parametrize(
    "message",
    [
        CreditDrop(credit_id=3, phase="warmup", conversation_index=9, turn_index=2, scheduled_wall_ns=123),
        Register(service_type="worker", service_id="worker-0", pid=1, hostname="h", protocol_version=1),
        RecordBatch(
            records=[
                RequestRecord(
                    credit_id=1,
                    phase="profiling",
                    worker_id="worker-0",
                    node="n1",
                    conversation_index=0,
                    started_wall_ns=10,
                    latency_ns=20,
                    response_times_ns=[5, 7],
                    error_type="http_error",
                    status_code=500,
                )
            ]
        ),
        Configure(
            config=RunConfig(endpoint=EndpointConfig(model="m")),
            addresses=ipc_addresses(__import__("pathlib").Path("/tmp/x")),
            run_dir="/tmp/run",
            worker_ids=["worker-0"],
        ),
    ],
)
def test_round_trip(message: object) -> None:
    assert decode(encode(message)) == message  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame", "where"),
    [
        (b"not json", "frame"),
        (b'{"kind": "no_such_kind"}', "frame"),
        (b'{"kind": "credit_drop", "credit_id": "x", "phase": "warmup", "conversation_index": 0}', "credit_id"),
        (b'{"kind": "credit_return", "credit_id": 1, "extra": 2}', "extra"),
    ],
)
def test_invalid_frames_raise_protocol_error_naming_the_field(frame: bytes, where: str) -> None:
    with pytest.raises(ProtocolError, match=where):
        decode(frame)


def test_tcp_without_keys_is_refused() -> None:
    import zmq

    from aiperf_hpc.errors import UsageError
    from aiperf_hpc.runtime.bus import Bus

    bus = Bus()
    try:
        with pytest.raises(UsageError, match="CURVE"):
            bus.socket(zmq.PULL, bind="tcp://127.0.0.1:*")
    finally:
        bus.close()
