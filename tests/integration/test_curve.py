"""CURVE on the multi-node transport: the run's clients get through, a peer without the key does not."""

from __future__ import annotations

import asyncio

import pytest
import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from aiperf_hpc.protocol.messages import CreditReturn
from aiperf_hpc.runtime.bus import Bus, bound_endpoint, send
from aiperf_hpc.runtime.curve import CurveKeys

pytestmark = pytest.mark.integration


async def next_event(monitor: zmq.asyncio.Socket, wanted: set[int]) -> int:
    while True:
        event = await recv_monitor_message(monitor)
        if event["event"] in wanted:
            return int(event["event"])


async def test_only_holders_of_the_run_key_are_admitted() -> None:
    keys = CurveKeys.generate()
    server, client = Bus(keys), Bus(keys)
    rogue_context = zmq.asyncio.Context()
    try:
        pull = server.socket(zmq.PULL, bind="tcp://127.0.0.1:*")
        address = bound_endpoint(pull)
        monitor = pull.get_monitor_socket()
        refused = {
            zmq.EVENT_HANDSHAKE_FAILED_AUTH,
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
            zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
        }

        # A peer that knows the server's public key but not the run's client key: refused by ZAP.
        impostor = rogue_context.socket(zmq.PUSH)
        impostor.linger = 0
        public, secret = zmq.curve_keypair()
        impostor.curve_serverkey = keys.server_public.encode()
        impostor.curve_publickey, impostor.curve_secretkey = public, secret
        impostor.connect(address)
        await impostor.send(b'{"kind": "credit_return", "credit_id": 666}')
        assert await asyncio.wait_for(next_event(monitor, refused), 10) == zmq.EVENT_HANDSHAKE_FAILED_AUTH

        # A plain peer without any key: its handshake fails too.
        plain = rogue_context.socket(zmq.PUSH)
        plain.linger = 0
        plain.connect(address)
        await plain.send(b'{"kind": "credit_return", "credit_id": 667}')
        assert await asyncio.wait_for(next_event(monitor, refused), 10) in refused

        push = client.socket(zmq.PUSH, connect=address)
        await send(push, CreditReturn(credit_id=1))
        received = await server.recv(pull, timeout_s=10, what="the legitimate message")
        assert received == CreditReturn(credit_id=1)
        with pytest.raises(Exception, match="timed out"):
            await server.recv(pull, timeout_s=0.5, what="anything else")  # the rogues' frames never arrive
        pull.disable_monitor()
    finally:
        rogue_context.destroy(linger=0)
        client.close()
        server.close()
