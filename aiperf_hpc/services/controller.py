"""SystemController: runs in the CLI process and drives one profile run from start to exit code.

Sequence (every wait bounded, every wait also ends on a service failure or a signal):
  1. start dataset, timing, records and worker-manager processes; wait for their `Register`
  2. `Configure` them (the dataset manager as soon as it registers: its build is the longest);
     the worker manager then starts the workers, which register too
  3. `Configure` the workers (they fetch the dataset and announce their slots to timing)
  4. `StartProfiling`; wait for `TimingDone` while records keep arriving
  5. `ExpectRecords(total issued)`; wait until the records manager has them all
  6. `Finalize`; wait for `ResultsReady`
  7. `Shutdown` everyone; wait for the processes; terminate, then kill what is left
On SIGINT/SIGTERM it jumps to: stop issuing, cancel in-flight requests, finalize partial results,
shut down. On a failure it finalizes whatever records exist, then shuts down; when the failure is
the timing manager's, it first cancels the workers' requests itself and waits (bounded) for their
records. New errors make it probe the server; a server that stopped accepting connections fails
the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Protocol

import zmq

from aiperf_hpc.config import RunConfig
from aiperf_hpc.core.live_stats import LiveStatus
from aiperf_hpc.core.outcome import (
    RunEnding,
    RunOutcome,
    RunStatus,
    outcome_with_results,
    outcome_without_results,
    outcome_without_run,
    run_happened,
)
from aiperf_hpc.errors import DeadlineExceeded, RunError, ServiceError
from aiperf_hpc.launch.launcher import Launcher
from aiperf_hpc.protocol.addresses import Addresses
from aiperf_hpc.protocol.messages import (
    PROTOCOL_VERSION,
    CancelCredits,
    ClockProbe,
    ClockReply,
    Configure,
    Configured,
    ExpectRecords,
    Finalize,
    Heartbeat,
    Message,
    RecordsProgress,
    Register,
    RegisterRefused,
    ResultsReady,
    ServiceFailed,
    Shutdown,
    StartProfiling,
    StopIssuing,
    TimingDone,
    WorkerLost,
    WorkerStatus,
)
from aiperf_hpc.runtime.bus import Bus, bound_endpoint, send_to
from aiperf_hpc.runtime.clock import SYSTEM_CLOCK, Clock
from aiperf_hpc.runtime.preflight import check_reachable

log = logging.getLogger(__name__)

MANAGERS = ("dataset", "timing", "records", "worker_manager")
HEARTBEAT_INTERVAL_S = 1.0
PROGRESS_STALL_MARGIN_S = 30.0  # beyond the request timeout, how long no record may arrive
RECORDS_FLUSH_TIMEOUT_S = 10.0
FINALIZE_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 5.0  # on a signal: how long timing may take to cancel and settle
SHUTDOWN_TIMEOUT_S = 10.0
SERVER_PROBE_TIMEOUT_S = 5.0  # a connect to the server that takes longer counts as the server gone


class Interrupted(Exception):
    """A signal arrived; the run goes to the interrupted ending."""


class RunView(Protocol):
    """What the user sees of a run while it runs (`live.view`); called on the controller's loop."""

    def note(self, line: str) -> None:
        """One event worth a line of its own: the run started, a worker was lost, a signal arrived."""

    def update(self, status: LiveStatus) -> None:
        """The run's live status, every `HEARTBEAT_INTERVAL_S` while credits are being issued."""


class Controller:
    def __init__(
        self,
        *,
        config: RunConfig,
        run_dir: Path,
        addresses: Addresses,
        bus: Bus,
        launcher: Launcher,
        view: RunView,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`clock.wall_ns` answers the services' clock probes; waits use the event loop's time."""
        self._config = config
        self._run_dir = run_dir
        self._addresses = addresses
        self._bus = bus
        self._launcher = launcher
        self._view = view
        self._clock = clock
        self._worker_ids = [f"worker-{i}" for i in range(config.worker_count)]
        self._registered: dict[str, Register] = {}
        self._configured: set[str] = set()
        self._details: dict[str, dict[str, int | str]] = {}
        self._timing_done: TimingDone | None = None
        self._records_progress = RecordsProgress(received=0, errors=0, expected=None)
        self._results: ResultsReady | None = None
        self._worker_status: WorkerStatus | None = None
        self._max_loop_lag_ms = 0.0
        self._failure: str | None = None
        self._dead: set[str] = set()  # services whose process exited or that reported a failure
        self._usage_error = False
        self._signal: int | None = None
        self._stopping = False
        self._changed = asyncio.Event()
        self._errors_probed = 0  # the error count at the last reachability probe of the server
        self._probe: asyncio.Task[None] | None = None

    # --- the run --------------------------------------------------------------------------------

    async def run(self) -> RunOutcome:
        self._router = self._bus.socket(zmq.ROUTER, bind=self._addresses.control)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)
        background = [
            asyncio.ensure_future(self._recv_loop()),
            asyncio.ensure_future(self._heartbeat_loop()),
            asyncio.ensure_future(self._watch_loop()),
        ]
        try:
            status, error = await self._profile()
            outcome = await self._finish(status, error)
        finally:
            self._stopping = True
            await self._shutdown()
            for task in background:
                task.cancel()
            if self._probe is not None:
                background.append(self._probe)
                self._probe.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        return outcome

    async def _profile(self) -> tuple[RunStatus, str | None]:
        """Steps 1-5. Returns how the run ended; never raises for a failure or a signal."""
        try:
            await self._start_services()
            await self._send("timing", StartProfiling())
            self._view.note(f"profiling with {len(self._worker_ids)} workers")
            await self._wait_timing_done()
            return "completed", None
        except Interrupted:
            self._view.note(f"{signal.Signals(self._signal or signal.SIGINT).name}: stopping, writing partial results")
            await self._stop_issuing("interrupted by a signal")
            return "interrupted", None
        except RunError as exc:
            log.info("run failed: %s", exc)  # the CLI prints the error once, from the outcome
            await self._stop_issuing(f"run failed: {exc}")
            return "failed", str(exc)

    async def _start_services(self) -> None:
        """Start and configure everyone in dependency order: binders report the endpoints they
        really bound (`tcp://HOST:*` gets its port at bind time), and each stage gets the real
        addresses of the stages before it."""
        control = bound_endpoint(self._router)
        addresses = self._addresses.model_copy(update={"control": control})
        for name in MANAGERS:
            self._launcher.start(name, name, control)
        # Building the dataset is the longest set-up, and everyone after it waits for it: it starts as
        # soon as the dataset manager registers, while the other managers are still starting.
        await self._wait_services(("dataset",), self._registered, "Register")
        await self._send_configure(("dataset",), addresses)
        await self._wait_services(MANAGERS, self._registered, "Register")
        await self._send_configure(("records", "worker_manager"), addresses)
        await self._wait_services(("dataset", "records", "worker_manager"), self._configured, "Configured")
        addresses = addresses.model_copy(
            update={
                "dataset": self._endpoint("dataset"),
                "records": self._endpoint("records"),
                "health": self._endpoint("worker_manager"),
            }
        )
        await self._configure(("timing",), addresses)
        addresses = addresses.model_copy(update={"credits": self._endpoint("timing")})
        await self._wait_services(self._worker_ids, self._registered, "Register")
        await self._configure(self._worker_ids, addresses)

    async def _configure(self, service_ids: Sequence[str], addresses: Addresses) -> None:
        await self._send_configure(service_ids, addresses)
        await self._wait_services(service_ids, self._configured, "Configured")

    async def _send_configure(self, service_ids: Sequence[str], addresses: Addresses) -> None:
        configure = Configure(
            config=self._config, addresses=addresses, run_dir=str(self._run_dir), worker_ids=self._worker_ids
        )
        for service_id in service_ids:
            await self._send(service_id, configure)

    def _endpoint(self, service_id: str) -> str:
        return str(self._details[service_id]["endpoint"])

    async def _wait_services(self, service_ids: Sequence[str], answered: Collection[str], what: str) -> None:
        """Wait until every service in `service_ids` has sent `what`; a timeout names the late ones."""
        try:
            await self._wait(
                lambda: all(s in answered for s in service_ids), self._config.service_start_timeout_s, what
            )
        except DeadlineExceeded as exc:
            late = ", ".join(s for s in service_ids if s not in answered)
            raise DeadlineExceeded(f"{exc} from {late}") from None

    async def _wait_timing_done(self) -> None:
        """Wait for TimingDone while records keep arriving; fail when they stall."""
        stall_limit_s = self._config.endpoint.request_timeout_s + PROGRESS_STALL_MARGIN_S
        last_received = -1
        while self._timing_done is None:
            if self._records_progress.received == last_received:
                raise DeadlineExceeded(f"no record arrived for {stall_limit_s:g} s; the run is stuck")
            last_received = self._records_progress.received
            with contextlib.suppress(DeadlineExceeded):
                await self._wait(lambda: self._timing_done is not None, stall_limit_s, "TimingDone from timing")

    async def _stop_issuing(self, reason: str) -> None:
        """Best effort, bounded: ask timing to stop and cancel, and wait for its TimingDone."""
        if self._timing_done is not None or "timing" not in self._configured:
            return
        await self._send("timing", StopIssuing(reason=reason))
        try:
            await self._wait(
                lambda: self._timing_done is not None,
                STOP_TIMEOUT_S,
                "TimingDone from timing",
                ending_on="timing",
            )
        except RunError as exc:
            log.error("timing did not stop cleanly: %s", exc)

    async def _finish(self, status: RunStatus, error: str | None) -> RunOutcome:
        """Steps 5-6: collect every record, then have the records manager write the results. What
        each step found decides the status (`core.outcome`)."""
        ending = RunEnding(status, error)
        if not run_happened(records_configured="records" in self._configured, usage_error=self._usage_error):
            return outcome_without_run(ending, signal_number=self._signal, usage_error=self._usage_error)
        missing = 0
        if self._timing_done is None:
            await self._drain_workers()
        else:
            total = sum(self._timing_done.issued.values())
            await self._send("records", ExpectRecords(total=total))
            try:
                await self._wait(
                    lambda: self._records_progress.received >= total,
                    RECORDS_FLUSH_TIMEOUT_S,
                    "every record",
                    ending_on="records",
                )
            except RunError as exc:
                missing = total - self._records_progress.received
                log.error("%d records missing: %s", missing, exc)
                ending = ending.with_records_missing(missing, total)
        # The server may have died after the last probe (or with the last requests): ask once more.
        if ending.needs_server_check(self._records_progress.errors):
            ending = ending.with_server_check(await self._server_gone())
        dataset = self._details.get("dataset", {})
        finalize = Finalize(
            status=ending.status, missing_records=missing, dataset=dataset, max_loop_lag_ms=self._max_loop_lag_ms
        )
        await self._send("records", finalize)
        try:
            await self._wait(
                lambda: self._results is not None,
                FINALIZE_TIMEOUT_S,
                "ResultsReady from records",
                ending_on="records",
            )
        except RunError as exc:
            return outcome_without_results(ending, str(exc), signal_number=self._signal, usage_error=self._usage_error)
        assert self._results is not None
        return outcome_with_results(
            ending,
            request_count=int(self._results.metrics["request_count"]),
            success_count=int(self._results.metrics["success_count"]),
            signal_number=self._signal,
            usage_error=self._usage_error,
        )

    async def _drain_workers(self) -> None:
        """The timing manager is gone (or never finished), so nobody counts the credits in flight:
        the workers are told to cancel them directly, and the results wait (bounded) until the worker
        manager reports none in flight and every record the workers finished has arrived."""
        if "worker_manager" not in self._configured or "worker_manager" in self._dead:
            return
        for worker_id in self._worker_ids:
            if worker_id in self._configured and worker_id in self._registered:
                await self._send(worker_id, CancelCredits())
        self._worker_status = None  # wait for a status taken after the cancel

        def drained() -> bool:
            status = self._worker_status
            return status is not None and status.in_flight == 0 and self._records_progress.received >= status.completed

        try:
            await self._wait(drained, STOP_TIMEOUT_S, "the workers' last records", ending_on="worker_manager")
        except RunError as exc:
            log.error("workers not drained: %s", exc)

    @property
    def results(self) -> ResultsReady | None:
        return self._results

    def live_status(self) -> LiveStatus:
        """The run as it stands: the records manager's latest figures, the worker manager's latest
        status, and the workers that registered and were not lost, by node."""
        workers = Counter(r.hostname for r in self._registered.values() if r.service_type == "worker")
        status = self._worker_status
        return LiveStatus(
            stats=self._records_progress.live,
            in_flight=None if status is None else status.in_flight,
            workers_alive=None if status is None else status.alive,
            workers_by_node=dict(sorted(workers.items())),
        )

    async def _shutdown(self) -> None:
        """Step 7: Shutdown to every registered service, then make sure every process has ended."""
        for service_id in list(self._registered):
            await self._send(service_id, Shutdown())
        forced = await self._launcher.stop_all(SHUTDOWN_TIMEOUT_S)
        for what in forced:
            log.warning("shutdown: %s", what)

    # --- waiting --------------------------------------------------------------------------------

    async def _wait(
        self, condition: Callable[[], bool], timeout_s: float, what: str, *, ending_on: str | None = None
    ) -> None:
        """Wait for `condition`, at most `timeout_s`; re-checked whenever a control message or signal
        arrives. While running, a service failure or a signal ends the wait early. The ending steps
        (`ending_on=SERVICE`) go on after a failure or signal and give up early only when the service
        they wait on is gone, so partial results still include every record that can arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self._changed.clear()
            if ending_on is not None and ending_on in self._dead:
                raise ServiceError(f"{ending_on} is gone")
            if ending_on is None and self._failure is not None:
                raise ServiceError(self._failure)
            if ending_on is None and self._signal is not None:
                raise Interrupted
            if condition():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DeadlineExceeded(f"timed out after {timeout_s:g} s waiting for {what}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _on_signal(self, signum: int) -> None:
        if self._signal is None:
            self._signal = signum
        else:
            log.warning("second signal: already stopping")
        self._changed.set()

    def _fail(self, reason: str) -> None:
        if self._failure is None and not self._stopping:
            self._failure = reason
            self._changed.set()

    # --- background loops -----------------------------------------------------------------------

    async def _recv_loop(self) -> None:
        while True:
            try:
                identity, message = await self._bus.recv_routed(self._router, timeout_s=1.0, what="control")
            except DeadlineExceeded:
                continue
            await self._on_message(identity.decode(), message)
            self._changed.set()

    async def _on_message(self, sender: str, message: Message) -> None:
        match message:
            case Register(protocol_version=version) if version != PROTOCOL_VERSION:
                reason = f"protocol version {version} does not match the controller's {PROTOCOL_VERSION}"
                await send_to(self._router, sender.encode(), RegisterRefused(reason=reason))
                self._fail(f"{sender}: {reason}")
            case Register():
                self._registered[sender] = message
            case ClockProbe(sent_wall_ns=sent_wall_ns):
                reply = ClockReply(probe_sent_wall_ns=sent_wall_ns, controller_wall_ns=self._clock.wall_ns())
                await send_to(self._router, sender.encode(), reply)
            case Configured():
                self._configured.add(sender)
                self._details[sender] = message.detail
            case RecordsProgress(received=received, errors=errors):
                self._records_progress = message
                if self._config.metrics.failure_threshold_crossed(received, errors):
                    limit = self._config.metrics.failure_threshold_pct
                    self._fail(f"{errors} of {received} requests failed, more than --failure-threshold {limit:g}%")
                if errors > self._errors_probed and (self._probe is None or self._probe.done()):
                    self._errors_probed = errors
                    self._probe = asyncio.ensure_future(self._probe_server())
            case TimingDone():
                self._timing_done = message
            case ResultsReady():
                self._results = message
            case WorkerStatus():
                self._worker_status = message
                self._max_loop_lag_ms = max(self._max_loop_lag_ms, message.max_loop_lag_ms)
            case WorkerLost(worker_id=worker_id, reason=reason) if worker_id not in self._configured:
                self._fail(f"worker {worker_id} ended before it was ready: {reason}")
            case WorkerLost(worker_id=worker_id, reason=reason):
                self._registered.pop(worker_id, None)  # no more heartbeats or shutdown to a lost worker
                if not self._stopping and self._timing_done is None:
                    self._view.note(f"worker {worker_id} lost: {reason}")
                    await self._send("timing", message)
                    if self._config.cluster.on_worker_loss == "abort":
                        self._fail(f"worker {worker_id} lost ({reason}); --on-worker-loss abort")
            case ServiceFailed(service_id=service_id, error=error, usage_error=True):
                self._dead.add(service_id)
                self._usage_error = True
                self._fail(error)
            case ServiceFailed(service_id=service_id, error=error):
                self._dead.add(service_id)
                self._fail(f"service {service_id} failed: {error}")
            case Heartbeat():
                pass
            case _:
                log.error("unexpected %s from %s on the control socket", type(message).__name__, sender)

    async def _probe_server(self) -> None:
        """New errors arrived: is the server still there? A server that no longer accepts connections
        ends the run as failed (with partial results) instead of turning every remaining request into
        an instant connection error and the run into a "completed" one."""
        if (reason := await self._server_gone()) is not None:
            self._fail(reason)

    async def _server_gone(self) -> str | None:
        try:
            await check_reachable(self._config.endpoint.url, timeout_s=SERVER_PROBE_TIMEOUT_S)
        except RunError as exc:
            return f"the server stopped answering during the run: {exc}"
        return None

    async def _heartbeat_loop(self) -> None:
        beat = Heartbeat(service_id="controller")
        while not self._stopping:
            for service_id in list(self._registered):
                await self._send(service_id, beat)
            if "timing" in self._configured and self._timing_done is None:
                self._view.update(self.live_status())
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    async def _watch_loop(self) -> None:
        """A manager process that exits before shutdown fails the run, naming its last log lines."""
        while True:
            for service_id, code in self._launcher.newly_exited():
                self._dead.add(service_id)
                self._changed.set()
                tail = self._launcher.log_tail(service_id).replace("\n", " | ")
                self._fail(f"service {service_id} exited with code {code}" + (f": {tail}" if tail else ""))
            await asyncio.sleep(0.1)

    async def _send(self, service_id: str, message: Message) -> None:
        if not await send_to(self._router, service_id.encode(), message):
            level = logging.DEBUG if self._stopping or self._failure else logging.WARNING
            log.log(level, "could not send %s to %s (gone)", type(message).__name__, service_id)
