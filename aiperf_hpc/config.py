"""The user's run configuration: frozen pydantic models, validated once in the CLI process.

The controller ships `RunConfig` to every service inside the `Configure` message, so these models are
also part of the wire protocol: adding an optional field is free, changing a meaning bumps
`PROTOCOL_VERSION`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EndpointType = Literal["chat", "completions"]

ENDPOINT_PATHS: dict[str, str] = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EndpointConfig(_Frozen):
    """Where and how requests are sent."""

    url: str = "http://127.0.0.1:8000"
    model: str
    endpoint_type: EndpointType = "chat"
    streaming: bool = False
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    extra_inputs: dict[str, Any] = Field(default_factory=dict)
    request_timeout_s: float = Field(default=600.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must be an http:// or https:// URL with a host, got {url!r}")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"--url has an invalid port: {url!r}") from exc
        return url.rstrip("/")

    @property
    def request_url(self) -> str:
        """The full URL requests go to. A URL that already names the endpoint path is used as given."""
        path = ENDPOINT_PATHS[self.endpoint_type]
        if self.url.endswith(path):
            return self.url
        if self.url.endswith("/v1"):
            return self.url[: -len("/v1")] + path
        return self.url + path


class InputConfig(_Frozen):
    """Synthetic inputs: prompt and output lengths in tokens (normal distributions, clipped at 1)."""

    isl_mean: int = Field(default=550, ge=1)
    isl_stddev: float = Field(default=0.0, ge=0)
    osl_mean: int | None = Field(default=None, ge=1)
    osl_stddev: float = Field(default=0.0, ge=0)
    num_entries: int = Field(default=100, ge=1)
    random_seed: int = 0


class LoadConfig(_Frozen):
    """How much load and for how long. The TimingManager is the only reader of these fields."""

    concurrency: int = Field(default=1, ge=1)
    request_count: int | None = Field(default=None, ge=1)
    benchmark_duration_s: float | None = Field(default=None, gt=0)
    grace_period_s: float = Field(default=30.0, ge=0)
    warmup_request_count: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_stop_condition(self) -> LoadConfig:
        if self.request_count is not None and self.benchmark_duration_s is not None:
            raise ValueError("--request-count and --benchmark-duration cannot be used together")
        return self

    @property
    def profiling_request_count(self) -> int | None:
        """Requests in the profiling phase; None when the phase is bounded by duration instead."""
        if self.benchmark_duration_s is not None:
            return None
        if self.request_count is not None:
            return self.request_count
        return max(10, 10 * self.concurrency)


class RunConfig(_Frozen):
    """Everything one `profile` run needs; shipped to every service at configure time."""

    endpoint: EndpointConfig
    inputs: InputConfig = Field(default_factory=InputConfig)
    load: LoadConfig = Field(default_factory=LoadConfig)
    workers: int = Field(default=0, ge=0, description="0 means: chosen from concurrency and CPU count")
    artifact_dir: Path = Path("artifacts")
    service_start_timeout_s: float = Field(default=60.0, gt=0)

    def redacted(self) -> dict[str, Any]:
        """The config as JSON-ready data with secrets (API key, header values) masked, for exports."""
        data = self.model_dump(mode="json")
        endpoint = data["endpoint"]
        if endpoint["api_key"]:
            endpoint["api_key"] = "***"
        endpoint["headers"] = {name: "***" for name in endpoint["headers"]}
        return data

    @property
    def worker_count(self) -> int:
        """Workers to start: the user's choice, else one per CPU core, never more than the concurrency."""
        if self.workers > 0:
            return self.workers
        return max(1, min(self.load.concurrency, os.cpu_count() or 1))
