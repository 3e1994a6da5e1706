"""Did the client keep up? The run's self-check, so a saturated client never passes for a slow server.

Pure. A run is valid when requests left on time (send lag) and, for a scheduled run, at the rate
asked for, and the workers' event loops were not stalled. Every finding is a plain sentence with
a remedy; the CLI prints them and `profile_export.json` keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiperf_hpc.core.metrics import RunMetrics

SEND_LAG_P99_LIMIT_MS = 10.0  # requests leaving later than this are no longer "on schedule"
RATE_SHORTFALL_LIMIT = 0.99  # achieved / scheduled rate below this: the schedule was not kept
LOOP_LAG_LIMIT_MS = 50.0  # a worker loop this late stamps every response it reads late too


@dataclass(frozen=True, slots=True)
class Validity:
    valid: bool
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"valid": self.valid, "warnings": list(self.warnings)}


def assess_validity(metrics: RunMetrics, *, max_loop_lag_ms: float | None, workers: int | None) -> Validity:
    """Judge the run; `max_loop_lag_ms` None skips the event-loop check, `workers` None (unknown)
    only changes the wording of the remedy."""
    now = "" if workers is None else f", now {workers}"
    remedy = f"add workers (--workers{now}) or nodes (--launcher slurm)"
    warnings = []
    send_lag = metrics.metrics.get("send_lag")
    if send_lag is not None and send_lag.p99 > SEND_LAG_P99_LIMIT_MS:
        warnings.append(
            f"requests left late: send lag p99 {send_lag.p99:.1f} ms (limit {SEND_LAG_P99_LIMIT_MS:g} ms); "
            f"the client or the --concurrency cap could not keep the schedule; {remedy}"
        )
    achieved, scheduled = metrics.achieved_request_rate, metrics.scheduled_request_rate
    if achieved is not None and scheduled and achieved < RATE_SHORTFALL_LIMIT * scheduled:
        warnings.append(f"achieved {achieved:.1f} req/s of the {scheduled:.1f} req/s scheduled; {remedy}")
    if max_loop_lag_ms is not None and max_loop_lag_ms > LOOP_LAG_LIMIT_MS:
        warnings.append(
            f"a worker's event loop lagged {max_loop_lag_ms:.0f} ms (limit {LOOP_LAG_LIMIT_MS:g} ms): "
            f"its timestamps are late by up to that much; {remedy}"
        )
    return Validity(valid=not warnings, warnings=warnings)
