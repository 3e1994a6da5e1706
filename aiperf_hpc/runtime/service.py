"""The one base class of every service process: register, configure, run loops, stop.

Lifecycle (each step bounded):
    start()  connect the control DEALER, send `Register`, wait for `Configure`, call `configure()`,
             answer `Configured`.
    run()    the control loop (heartbeats both ways, `Shutdown`) together with the subclass's
             `loops()`; the first loop to end ends them all.
A service that hears nothing from the controller for `CONTROLLER_SILENCE_LIMIT_S` stops by itself,
so a killed controller leaves no process behind.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import os
import socket
from collections.abc import Coroutine
from typing import Any, ClassVar

import zmq

from aiperf_hpc.errors import RunError, ServiceError, UsageError
from aiperf_hpc.protocol.messages import (
    PROTOCOL_VERSION,
    ClockProbe,
    ClockReply,
    Configure,
    Configured,
    Heartbeat,
    Message,
    Register,
    RegisterRefused,
    ServiceFailed,
    ServiceType,
    Shutdown,
)
from aiperf_hpc.runtime.aio import run_together
from aiperf_hpc.runtime.bus import Bus, describe, send
from aiperf_hpc.runtime.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0
CLOCK_PROBES = 8
CLOCK_PROBE_TIMEOUT_S = 10.0
CONTROLLER_SILENCE_LIMIT_S = 15.0
CONFIGURE_TIMEOUT_S = 120.0


class State(enum.Enum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"


_TRANSITIONS: dict[State, set[State]] = {
    State.CREATED: {State.STARTING},
    State.STARTING: {State.RUNNING},
    State.RUNNING: {State.STOPPED},
    State.STOPPED: set(),
    State.FAILED: set(),
}


class Service:
    """Subclasses set `service_type` and implement `configure()`, `on_control()` and `loops()`."""

    service_type: ClassVar[ServiceType]
    measures_clock: ClassVar[bool] = False  # workers stamp records with their offset to the controller

    def __init__(self, *, service_id: str, control_address: str, bus: Bus, clock: Clock = SYSTEM_CLOCK) -> None:
        """`clock`: the one source of time of the service and its subclass (`clock.perf_ns` for
        intervals, `clock.wall_ns` for anchors); asyncio deadlines use the event loop's own time."""
        self.service_id = service_id
        self.bus = bus
        self.clock = clock
        # Emulated Slurm nodes share one hostname; SLURMD_NODENAME names the node a task runs on.
        self.hostname = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
        self.state = State.CREATED
        self.clock_offset_ns: int | None = None
        self.clock_offset_bound_ns: int | None = None
        self._early: list[Message] = []  # control messages that arrived while measuring the clock
        self._control = bus.socket(zmq.DEALER, connect=control_address, identity=service_id)

    def _transition(self, to: State) -> None:
        if to is not State.FAILED and to not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"{self.service_id}: illegal state change {self.state.name} -> {to.name}")
        self.state = to

    # --- to implement -----------------------------------------------------------------------------

    async def configure(self, message: Configure) -> dict[str, int | str]:
        """Prepare for the run (bind sockets, load data). Returns details for `Configured`."""
        raise NotImplementedError

    async def on_control(self, message: Message) -> None:
        """Handle a control message other than heartbeats and shutdown."""
        log.warning("%s ignores control message %s", self.service_id, type(message).__name__)

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        """The service's own long-running loops (each ends with the run)."""
        return []

    async def close(self) -> None:
        """Release what `configure()` acquired; called once, however the run ended."""

    # --- lifecycle --------------------------------------------------------------------------------

    async def send_control(self, message: Message) -> None:
        await send(self._control, message)

    async def main(self) -> int:
        """The whole life of the process; returns its exit status."""
        try:
            await self._start()
            self._transition(State.RUNNING)
            await run_together(self._control_loop(), self._heartbeat_loop(), *self.loops())
            self._transition(State.STOPPED)
            return 0
        except UsageError as exc:
            self._transition(State.FAILED)
            log.error("%s: bad input: %s", self.service_id, exc)
            await self._report_failure(str(exc), usage_error=True)
            return 1
        except (RunError, OSError, zmq.ZMQError) as exc:
            self._transition(State.FAILED)
            log.error("%s failed: %s", self.service_id, describe(exc))
            await self._report_failure(describe(exc))
            return 1
        except Exception as exc:  # a bug: still reported in one line (the traceback goes to the log), exit 1
            self._transition(State.FAILED)
            log.exception("%s failed unexpectedly", self.service_id)
            await self._report_failure(f"unexpected {describe(exc)} (see its log)")
            return 1
        finally:
            await self.close()

    async def _start(self) -> None:
        self._transition(State.STARTING)
        await self.send_control(
            Register(
                service_type=self.service_type,
                service_id=self.service_id,
                pid=os.getpid(),
                hostname=self.hostname,
                protocol_version=PROTOCOL_VERSION,
            )
        )
        if self.measures_clock:
            await self._measure_clock()
        while True:
            if self._early:
                message = self._early.pop(0)
            else:
                message = await self.bus.recv(
                    self._control, timeout_s=CONFIGURE_TIMEOUT_S, what="Configure from the controller"
                )
            match message:
                case Configure():
                    detail = await self._configure_unless_shut_down(message)
                    # What start-up built (modules, the dataset, pre-encoded bodies) lives for the whole
                    # run: kept out of the collector, a full collection no longer walks it mid-run.
                    gc.freeze()
                    await self.send_control(Configured(service_id=self.service_id, detail=detail))
                    return
                case RegisterRefused(reason=reason):
                    raise ServiceError(f"registration refused: {reason}")
                case Shutdown():
                    raise ServiceError("shut down before being configured")
                case _:
                    pass

    async def _measure_clock(self) -> None:
        """Offset of the controller's wall clock from ours: the probe with the smallest round trip
        wins (NTP's estimate); half that round trip bounds the error."""
        best: tuple[int, int] | None = None  # (round trip, offset)
        for _ in range(CLOCK_PROBES):
            sent_ns = self.clock.wall_ns()
            await self.send_control(ClockProbe(sent_wall_ns=sent_ns))
            while True:
                message = await self.bus.recv(self._control, timeout_s=CLOCK_PROBE_TIMEOUT_S, what="ClockReply")
                if isinstance(message, ClockReply) and message.probe_sent_wall_ns == sent_ns:
                    break
                if not isinstance(message, (ClockReply, Heartbeat)):
                    self._early.append(message)
            received_ns = self.clock.wall_ns()
            round_trip = received_ns - sent_ns
            offset = message.controller_wall_ns - (sent_ns + received_ns) // 2
            if best is None or round_trip < best[0]:
                best = (round_trip, offset)
        assert best is not None
        self.clock_offset_ns, self.clock_offset_bound_ns = best[1], best[0] // 2

    async def _configure_unless_shut_down(self, message: Configure) -> dict[str, int | str]:
        """Run `configure()`, but give up at once when the controller sends `Shutdown` meanwhile
        (another service failed), instead of finishing a long set-up nobody waits for."""
        configuring = asyncio.ensure_future(self.configure(message))
        try:
            while not configuring.done():
                receiving = asyncio.ensure_future(self._control.recv_multipart())
                await asyncio.wait({configuring, receiving}, return_when=asyncio.FIRST_COMPLETED)
                if not receiving.done():
                    receiving.cancel()
                    break
                if isinstance(self.bus.decode_frames(receiving.result()), Shutdown):
                    raise ServiceError("shut down while configuring")
            return configuring.result()
        finally:
            configuring.cancel()

    async def _control_loop(self) -> None:
        while True:
            message = await self.bus.recv(
                self._control,
                timeout_s=CONTROLLER_SILENCE_LIMIT_S,
                what="any message from the controller (is it still alive?)",
            )
            match message:
                case Heartbeat():
                    pass
                case Shutdown():
                    log.info("%s: shutdown requested", self.service_id)
                    return
                case _:
                    await self.on_control(message)

    async def _heartbeat_loop(self) -> None:
        beat = Heartbeat(service_id=self.service_id)
        while True:
            await self.send_control(beat)
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    async def _report_failure(self, error: str, *, usage_error: bool = False) -> None:
        failed = ServiceFailed(service_id=self.service_id, error=error, usage_error=usage_error)
        try:
            await asyncio.wait_for(self.send_control(failed), 1.0)
        except (asyncio.TimeoutError, zmq.ZMQError):
            log.error("%s could not report its failure to the controller", self.service_id)
