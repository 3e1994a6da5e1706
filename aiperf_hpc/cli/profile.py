"""`aiperf-hpc profile`: every option comes from the config schema (`options.py`)."""

from __future__ import annotations

from typing import Any

from aiperf_hpc.options import build_run_configs, takes_profile_options


@takes_profile_options
def profile(**values: Any) -> int:
    """Measure a server: TTFT, ITL, latency, throughput and goodput under a given load."""
    from aiperf_hpc.dataset.check import check_inputs
    from aiperf_hpc.run_profile import run_profiles

    runs = build_run_configs(values)
    first = runs[0][1]  # every point of a sweep reads the same inputs
    check_inputs(first.inputs, fixed_schedule=first.load.fixed_schedule)
    return int(run_profiles(runs))
