"""Knobs of the bundled mock OpenAI-compatible server."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiperf_hpc.mock_server.faults import FAULT_KINDS, FaultKind


class MockServerConfig(BaseModel):
    """How the mock server paces and fails its answers.

    Latencies are in milliseconds. `error_rate` is the fraction of valid requests (chat, completions,
    embeddings) answered with an error status, drawn among `error_statuses`; `faults` maps each fault
    kind (see faults.py) to the fraction of valid requests that get it. Error rate and fault fractions
    add up to at most 1. The draws come from `random.Random(random_seed)`, so a run is repeatable. With
    `send_usage` False no answer carries `usage` (not even a stream that asked for it), as from servers
    that never report token counts. With `zero_work` the generation endpoints answer fixed bytes (16
    tokens) and ignore the other knobs, to measure a client's own ceiling (see zero_work.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttft_ms: float = Field(default=0.0, ge=0)
    itl_ms: float = Field(default=0.0, ge=0)
    default_output_tokens: int = Field(default=16, ge=1)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_statuses: list[int] = Field(default_factory=lambda: [500], min_length=1)
    faults: dict[FaultKind, float] = Field(default_factory=dict)
    random_seed: int = 0
    model_names: list[str] = Field(default_factory=lambda: ["mock-model"], min_length=1)
    send_usage: bool = True
    zero_work: bool = False

    @field_validator("error_statuses")
    @classmethod
    def _error_statuses_are_errors(cls, statuses: list[int]) -> list[int]:
        for status in statuses:
            if not 400 <= status <= 599:
                raise ValueError(f"an error status is 400..599, got {status}")
        return statuses

    @field_validator("faults", mode="before")
    @classmethod
    def _faults_are_known_fractions(cls, faults: Any) -> Any:
        if not isinstance(faults, dict):
            return faults  # the type check names the problem
        for kind, fraction in faults.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r} (kinds: {', '.join(FAULT_KINDS)})")
            if not isinstance(fraction, int | float) or not 0 < fraction <= 1:
                raise ValueError(f"the fraction of {kind!r} must be in (0, 1], got {fraction!r}")
        return faults

    @model_validator(mode="after")
    def _fractions_fit(self) -> MockServerConfig:
        total = self.error_rate + sum(self.faults.values())
        if total > 1 + 1e-9:
            raise ValueError(f"--error-rate and the --fault fractions add up to {total:g}, more than 1")
        return self
