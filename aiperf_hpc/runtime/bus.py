"""ZeroMQ adapter: socket creation and typed send/receive over the message catalogue.

Every receive here is bounded by the caller's `timeout_s`; zmq errors are translated into our
error tree. High-water marks bound memory: a slow consumer slows its producers down instead of
letting queues grow. With `CurveKeys`, every tcp:// socket is CURVE-encrypted and a ZAP handler
admits only the run's client key (see `runtime.curve`); ipc:// sockets never need it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import zmq
import zmq.asyncio
from pydantic import BaseModel
from zmq.auth.asyncio import AsyncioAuthenticator

from aiperf_hpc.errors import ProtocolError, RunError, UsageError
from aiperf_hpc.protocol.codec import decode, encode
from aiperf_hpc.protocol.messages import Message
from aiperf_hpc.runtime.aio import bounded
from aiperf_hpc.runtime.curve import CurveKeys

log = logging.getLogger(__name__)

HIGH_WATER_MARK = 10_000


class _AllowRunClient:
    """ZAP credentials provider: admits exactly the run's client public key."""

    def __init__(self, client_public: str) -> None:
        self._client_public = client_public.encode()

    def callback(self, domain: str, key: bytes) -> bool:
        return key == self._client_public


class Bus:
    """Owns one zmq context and every socket made from it; `close()` closes them all."""

    def __init__(self, keys: CurveKeys | None = None) -> None:
        self._context = zmq.asyncio.Context()
        if hasattr(os, "SCHED_BATCH"):
            # zmq's I/O thread, woken by every send, would otherwise preempt this process's event loop:
            # on busy cores the loop then waits milliseconds to run again (a worker stamps chunks late,
            # the timing manager issues late). SCHED_BATCH threads never preempt on wake-up; it runs
            # when the loop waits or at the next tick. Set before the first socket starts the thread.
            self._context.set(zmq.THREAD_SCHED_POLICY, os.SCHED_BATCH)
        self._sockets: list[zmq.asyncio.Socket] = []
        self._keys = keys
        self._authenticator: AsyncioAuthenticator | None = None
        self.invalid_frames = 0

    def _secure(self, sock: zmq.asyncio.Socket, *, server: bool) -> None:
        """Make a tcp socket a CURVE server (binders) or client (connectors) of this run."""
        assert self._keys is not None
        keys = self._keys
        if server:
            if self._authenticator is None:
                # The ZAP handler must exist before the first handshake; it runs on this loop.
                self._authenticator = AsyncioAuthenticator(self._context)
                self._authenticator.start()
                self._authenticator.configure_curve_callback("*", _AllowRunClient(keys.client_public))
            sock.curve_server = True
            sock.curve_secretkey = keys.server_secret.encode()
            sock.curve_publickey = keys.server_public.encode()
        else:
            sock.curve_serverkey = keys.server_public.encode()
            sock.curve_publickey = keys.client_public.encode()
            sock.curve_secretkey = keys.client_secret.encode()

    def socket(
        self,
        socket_type: int,
        *,
        bind: str | None = None,
        connect: str | None = None,
        identity: str | None = None,
        linger_ms: int = 0,
    ) -> zmq.asyncio.Socket:
        sock = self._context.socket(socket_type)
        sock.setsockopt(zmq.LINGER, linger_ms)
        sock.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
        sock.setsockopt(zmq.RCVHWM, HIGH_WATER_MARK)
        if identity is not None:
            sock.setsockopt(zmq.IDENTITY, identity.encode())
        if socket_type == zmq.ROUTER:
            # A send to an identity that is gone raises instead of vanishing silently.
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        address = bind or connect or ""
        if address.startswith("tcp://"):
            if self._keys is None:
                raise UsageError("tcp:// transport needs the run's CURVE keys; refusing an unencrypted socket")
            self._secure(sock, server=bind is not None)
        if bind is not None:
            try:
                sock.bind(bind)
            except zmq.ZMQError as exc:
                sock.close(linger=0)
                if bind.startswith("tcp://"):
                    raise UsageError(
                        f"cannot listen on {bind}: {exc.strerror}; is --zmq-host an address of this host?"
                    ) from None
                raise RunError(f"cannot listen on {bind}: {exc.strerror}") from None
        if connect is not None:
            sock.connect(connect)
        self._sockets.append(sock)
        return sock

    def close(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
        for sock in self._sockets:
            sock.close()  # each with its own linger: pushed records still leave
        self._sockets.clear()
        self._context.destroy()  # also closes sockets made behind our back (monitors), so it cannot hang

    async def recv(self, sock: zmq.asyncio.Socket, *, timeout_s: float, what: str) -> Message:
        """Next valid message on a DEALER/PULL socket. Invalid frames are counted, logged and skipped."""
        while True:
            frames = await self._recv_frames(sock, timeout_s, what)
            message = self._decode_last(frames)
            if message is not None:
                return message

    async def next_message(self, sock: zmq.asyncio.Socket) -> tuple[bytes, Message]:
        """Next valid message and the sender's identity (b"" on DEALER/PULL), with no deadline.

        Only for a service's hot receive loops (credits, records): such a loop runs as long as its
        service and ends by cancellation, while the control loop's silence limit bounds the
        service's life. A per-message deadline would cost a task per message on the hot path.
        """
        while True:
            frames: list[bytes] = await sock.recv_multipart(copy=True)
            message = self._decode_last(frames)
            if message is not None:
                return (frames[0] if len(frames) > 1 else b""), message

    async def recv_routed(self, sock: zmq.asyncio.Socket, *, timeout_s: float, what: str) -> tuple[bytes, Message]:
        """Next valid message on a ROUTER socket, with the sender's identity."""
        while True:
            frames = await self._recv_frames(sock, timeout_s, what)
            message = self._decode_last(frames)
            if message is not None:
                return frames[0], message

    async def _recv_frames(self, sock: zmq.asyncio.Socket, timeout_s: float, what: str) -> list[bytes]:
        frames: list[bytes] = await bounded(sock.recv_multipart(copy=True), timeout_s, what)
        return frames

    def decode_frames(self, frames: list[bytes]) -> Message | None:
        """Decode a multipart message received directly from a socket (None when invalid)."""
        return self._decode_last(frames)

    def _decode_last(self, frames: list[bytes]) -> Message | None:
        try:
            return decode(frames[-1])
        except ProtocolError as exc:
            self.invalid_frames += 1
            log.error("dropped an invalid frame (%d so far): %s", self.invalid_frames, exc)
            return None


async def send(sock: zmq.asyncio.Socket, message: BaseModel) -> None:
    await sock.send(encode(message))


async def send_to(sock: zmq.asyncio.Socket, identity: bytes, message: BaseModel) -> bool:
    """Send on a ROUTER socket; False when the peer is unknown or gone (never raises for that)."""
    try:
        await sock.send_multipart([identity, encode(message)])
    except zmq.ZMQError as exc:
        if exc.errno == zmq.EHOSTUNREACH:
            return False
        raise
    return True


def bound_endpoint(sock: zmq.asyncio.Socket) -> str:
    """The address a socket really bound (a `tcp://host:*` bind gets its port here)."""
    endpoint = sock.getsockopt(zmq.LAST_ENDPOINT)
    return endpoint.decode() if isinstance(endpoint, bytes) else str(endpoint)


def describe(obj: Any) -> str:
    """One-line description of an exception for logs and error messages."""
    text = str(obj).strip().splitlines()[0] if str(obj).strip() else ""
    return f"{type(obj).__name__}: {text}" if text else type(obj).__name__
