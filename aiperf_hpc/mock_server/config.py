"""Knobs of the bundled mock OpenAI-compatible server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MockServerConfig(BaseModel):
    """How the mock server paces and fails its answers.

    Latencies are in milliseconds. `error_rate` is the fraction of valid requests (chat, completions,
    embeddings) answered with `error_status`; the draws come from `random.Random(random_seed)`, so a
    run is repeatable. With `send_usage` False no answer carries `usage` (not even a stream that asked
    for it), as from servers that never report token counts. With `zero_work` the generation
    endpoints answer fixed bytes (16 tokens) and ignore the other knobs, to measure a client's
    own ceiling (see zero_work.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttft_ms: float = Field(default=0.0, ge=0)
    itl_ms: float = Field(default=0.0, ge=0)
    default_output_tokens: int = Field(default=16, ge=1)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = Field(default=500, ge=400, le=599)
    random_seed: int = 0
    model_names: list[str] = Field(default_factory=lambda: ["mock-model"], min_length=1)
    send_usage: bool = True
    zero_work: bool = False
