"""Arrival processes: rates, shapes, determinism and the ramp, checked on long pure schedules."""

from __future__ import annotations

import numpy as np
import pytest

from aiperf_hpc.core.schedule import ArrivalSchedule, fixed_schedule_offsets_ns, ramped_concurrency

N = 20_000


def gaps_s(schedule: ArrivalSchedule, n: int = N) -> np.ndarray:
    offsets = np.array([schedule.offset_ns(k) for k in range(n)], dtype=np.float64) / 1e9
    return np.diff(offsets)


def test_constant_rate_is_exactly_periodic() -> None:
    schedule = ArrivalSchedule(rate=200.0, mode="constant")
    assert [schedule.offset_ns(k) for k in range(4)] == [0, 5_000_000, 10_000_000, 15_000_000]
    assert np.allclose(gaps_s(schedule, 1000), 0.005)


@pytest.mark.parametrize(
    ("mode", "burstiness", "cv"),
    [("poisson", 1.0, 1.0), ("gamma", 1.0, 1.0), ("gamma", 0.25, 2.0), ("gamma", 4.0, 0.5)],
)
def test_mean_rate_and_coefficient_of_variation(mode: str, burstiness: float, cv: float) -> None:
    gaps = gaps_s(ArrivalSchedule(rate=100.0, mode=mode, burstiness=burstiness, seed=7))  # type: ignore[arg-type]
    assert gaps.mean() == pytest.approx(0.01, rel=0.03)
    # A gamma process of shape k has a coefficient of variation of 1/sqrt(k).
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)


def test_gamma_shape_is_the_burstiness() -> None:
    gaps = gaps_s(ArrivalSchedule(rate=50.0, mode="gamma", burstiness=0.5, seed=3))
    shape_estimate = gaps.mean() ** 2 / gaps.var()
    assert shape_estimate == pytest.approx(0.5, rel=0.06)


def test_same_seed_same_schedule_and_other_seeds_differ() -> None:
    a = [ArrivalSchedule(rate=10.0, mode="poisson", seed=1).offset_ns(k) for k in range(5000)]
    b_schedule = ArrivalSchedule(rate=10.0, mode="poisson", seed=1)
    b = [b_schedule.offset_ns(k) for k in range(5000)]
    c_schedule = ArrivalSchedule(rate=10.0, mode="poisson", seed=2)
    assert a == b
    assert a != [c_schedule.offset_ns(k) for k in range(5000)]


def test_the_schedule_does_not_depend_on_how_it_is_read() -> None:
    """Workers or nodes never touch the schedule; reading it in another order gives the same offsets."""
    forward = ArrivalSchedule(rate=30.0, mode="gamma", burstiness=0.7, seed=11)
    jumpy = ArrivalSchedule(rate=30.0, mode="gamma", burstiness=0.7, seed=11)
    late = [jumpy.offset_ns(k) for k in (9000, 3, 4500, 0)]
    assert late == [forward.offset_ns(k) for k in (9000, 3, 4500, 0)]


def test_phases_use_independent_streams() -> None:
    warmup = ArrivalSchedule(rate=10.0, mode="poisson", seed=5, stream=0)
    profiling = ArrivalSchedule(rate=10.0, mode="poisson", seed=5, stream=1)
    assert [warmup.offset_ns(k) for k in range(1, 50)] != [profiling.offset_ns(k) for k in range(1, 50)]


def test_linear_ramp_reaches_the_rate_after_the_ramp() -> None:
    schedule = ArrivalSchedule(rate=100.0, mode="constant", ramp_up_s=10.0)
    offsets_s = np.array([schedule.offset_ns(k) for k in range(3000)]) / 1e9
    # Expected arrivals by time t during the ramp: rate * t^2 / (2 * ramp).
    assert int((offsets_s < 5.0).sum()) == pytest.approx(100 * 25 / 20, abs=2)
    assert int((offsets_s < 10.0).sum()) == pytest.approx(100 * 100 / 20, abs=2)
    after = np.diff(offsets_s[offsets_s > 10.0])
    assert np.allclose(after, 0.01)


def test_ramped_concurrency() -> None:
    assert [ramped_concurrency(8, 4.0, t) for t in (0.0, 0.5, 1.0, 2.0, 3.9, 4.0, 9.0)] == [1, 1, 2, 4, 8, 8, 8]
    assert ramped_concurrency(8, 0.0, 0.0) == 8


def test_fixed_schedule_window_and_speedup() -> None:
    timestamps_ms = [0.0, 100.0, 250.0, 400.0, 1000.0]
    assert fixed_schedule_offsets_ns(timestamps_ms) == [
        (0, 0),
        (1, 100_000_000),
        (2, 250_000_000),
        (3, 400_000_000),
        (4, 1_000_000_000),
    ]
    window = fixed_schedule_offsets_ns(timestamps_ms, start_offset_ms=100.0, end_offset_ms=400.0, speedup=2.0)
    assert window == [(1, 0), (2, 75_000_000), (3, 150_000_000)]
    assert fixed_schedule_offsets_ns(timestamps_ms, start_offset_ms=2000.0) == []


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        ArrivalSchedule(rate=0.0, mode="constant")
    with pytest.raises(ValueError, match="burstiness"):
        ArrivalSchedule(rate=1.0, mode="gamma", burstiness=0.0)
