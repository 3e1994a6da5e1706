"""The phase plan: what the timing manager issues, in which order, and when each phase stops.

Pure. A run has an optional warmup phase and a profiling phase; both use the same load mode:
closed loop (`max_in_flight` requests in flight), a request rate (an `ArrivalSchedule`, optionally
capped), or a fixed schedule (trace timestamps). A phase stops issuing at its request count, at its
duration, or when the trace is exhausted.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiperf_hpc.config import LoadConfig, RequestRateMode
from aiperf_hpc.core.schedule import ArrivalSchedule, ramped_concurrency
from aiperf_hpc.protocol.messages import Phase


@dataclass(frozen=True, slots=True)
class PhasePlan:
    name: Phase
    request_count: int | None  # None: bounded by duration_ns or the trace
    duration_ns: int | None
    max_in_flight: int | None  # None: no cap (rate and trace modes)
    ramp_up_s: float = 0.0
    rate: float | None = None
    rate_mode: RequestRateMode = "poisson"
    burstiness: float = 1.0
    fixed_schedule: bool = False

    def cap(self, elapsed_ns: int) -> int | None:
        """The in-flight cap `elapsed_ns` into the phase (ramped for closed-loop runs)."""
        if self.max_in_flight is None:
            return None
        if self.rate is None and not self.fixed_schedule:
            return ramped_concurrency(self.max_in_flight, self.ramp_up_s, elapsed_ns / 1e9)
        return self.max_in_flight

    def finished_issuing(self, *, issued: int, elapsed_ns: int, next_due_ns: int | None) -> bool:
        """True when the phase must not issue another credit. `next_due_ns` is the next credit's
        scheduled offset (rate and trace modes): an arrival due after the duration is not sent."""
        if self.request_count is not None and issued >= self.request_count:
            return True
        if self.duration_ns is None:
            return False
        if next_due_ns is not None:
            return next_due_ns >= self.duration_ns
        return elapsed_ns >= self.duration_ns

    def arrival_schedule(self, seed: int, stream: int) -> ArrivalSchedule | None:
        if self.rate is None:
            return None
        return ArrivalSchedule(
            rate=self.rate,
            mode=self.rate_mode,
            burstiness=self.burstiness,
            ramp_up_s=self.ramp_up_s,
            seed=seed,
            stream=stream,
        )


def plan_phases(load: LoadConfig, *, dataset_pass: bool = False) -> list[PhasePlan]:
    """Warmup (when asked for, by count or duration) then profiling, in the same load mode.

    `dataset_pass`: an input file given with neither a count nor a duration is sent once, every
    conversation with all its turns; the profiling phase then ends when the dataset does.
    """

    def phase(name: Phase, request_count: int | None, duration_s: float | None) -> PhasePlan:
        return PhasePlan(
            name=name,
            request_count=request_count,
            duration_ns=None if duration_s is None else int(duration_s * 1e9),
            max_in_flight=load.max_in_flight,
            ramp_up_s=load.ramp_up_duration_s,
            rate=load.request_rate,
            rate_mode=load.request_rate_mode,
            burstiness=load.burstiness,
            fixed_schedule=load.fixed_schedule,
        )

    phases = []
    if load.warmup_request_count > 0 or load.warmup_duration_s is not None:
        phases.append(phase("warmup", load.warmup_request_count or None, load.warmup_duration_s))
    profiling_count = None if dataset_pass else load.profiling_request_count
    phases.append(phase("profiling", profiling_count, load.benchmark_duration_s))
    return phases
