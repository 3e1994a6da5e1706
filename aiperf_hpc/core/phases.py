"""The phase plan: what the timing manager issues, in which order, and when each phase stops.

Pure: a phase decides from counts and `now_ns` alone whether another credit may be issued.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiperf_hpc.config import LoadConfig
from aiperf_hpc.protocol.messages import Phase


@dataclass(frozen=True, slots=True)
class PhasePlan:
    name: Phase
    concurrency: int
    request_count: int | None  # None: bounded by duration_ns instead
    duration_ns: int | None

    def may_issue(self, *, issued: int, outstanding: int, started_ns: int, now_ns: int) -> bool:
        """True when one more credit may be issued now (stop condition not reached, room left)."""
        return not self.finished_issuing(issued=issued, started_ns=started_ns, now_ns=now_ns) and (
            outstanding < self.concurrency
        )

    def finished_issuing(self, *, issued: int, started_ns: int, now_ns: int) -> bool:
        if self.request_count is not None and issued >= self.request_count:
            return True
        return self.duration_ns is not None and now_ns - started_ns >= self.duration_ns

    def issue_deadline_ns(self, started_ns: int) -> int | None:
        return None if self.duration_ns is None else started_ns + self.duration_ns


def plan_phases(load: LoadConfig) -> list[PhasePlan]:
    """Warmup (when asked for) then profiling, both at the configured concurrency."""
    phases = []
    if load.warmup_request_count > 0:
        phases.append(PhasePlan("warmup", load.concurrency, load.warmup_request_count, None))
    duration_ns = None if load.benchmark_duration_s is None else int(load.benchmark_duration_s * 1e9)
    phases.append(PhasePlan("profiling", load.concurrency, load.profiling_request_count, duration_ns))
    return phases
