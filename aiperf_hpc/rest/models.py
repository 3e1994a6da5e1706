"""The REST API's request and response bodies; `/openapi.json` is generated from these models.

Profile options stay a free-form object here: they are checked by the command line's own parser
(`validation.py`), so the API accepts exactly what `aiperf-hpc profile` accepts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["queued", "running", "completed", "failed", "cancelled"]
Launcher = Literal["local", "slurm"]

ACTIVE_STATUSES: frozenset[str] = frozenset({"queued", "running"})


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlurmResources(_Body):
    """The job of a `slurm` client group, as `aiperf-hpc submit` takes it."""

    nodes: int = Field(ge=1, description="Nodes for the workers.")
    workers_per_node: int = Field(ge=1, description="Workers (Slurm tasks) per node.")
    time: str = Field(description="Job time limit, HH:MM:SS or D-HH:MM:SS.", examples=["00:30:00"])
    partition: str | None = None
    account: str | None = None


class ClientGroupCreate(_Body):
    """A new client group: one `aiperf-hpc profile` run, on this machine or as a Slurm job."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "c8",
                    "launcher": "local",
                    "options": {"model": "mock-model", "url": "http://127.0.0.1:8000", "concurrency": 8},
                }
            ]
        },
    )

    name: str | None = Field(default=None, max_length=200, description="A label of your choosing.")
    launcher: Launcher = Field(description="local: a process on the service's machine; slurm: an sbatch job.")
    options: dict[str, Any] = Field(
        description=(
            "`aiperf-hpc profile` options without dashes (`request-rate` or `request_rate`): true -> --name, "
            "false -> --no-name, a list -> repeated (a sweep is refused), an object -> --name key:value. "
            "The service sets --artifact-dir, --launcher, --nodes, --workers-per-node, --metrics-port and --ui."
        ),
    )
    slurm: SlurmResources | None = Field(default=None, description="Required with launcher slurm.")

    @model_validator(mode="after")
    def _slurm_matches_launcher(self) -> ClientGroupCreate:
        if self.launcher == "slurm" and self.slurm is None:
            raise ValueError("launcher slurm needs a 'slurm' object (nodes, workers_per_node, time)")
        if self.launcher == "local" and self.slurm is not None:
            raise ValueError("'slurm' is only for launcher slurm")
        return self


class Progress(BaseModel):
    requests_done: int = Field(description="Records so far (warmup included).")
    requests_expected: int | None = Field(description="Warmup plus profiling requests; null for a duration.")
    source: Literal["metrics", "records"] = Field(description="The live metrics, or records.jsonl's lines.")


class ClientGroup(BaseModel):
    """A client group as the API shows it. API keys and header values in `options` read `***`."""

    id: str
    name: str | None
    launcher: Launcher
    status: Status
    options: dict[str, Any]
    slurm: SlurmResources | None
    slurm_job_id: str | None
    created_at: str = Field(description="ISO 8601, UTC.")
    finished_at: str | None
    exit_code: int | None = Field(description="The profile's exit code (the job's, for slurm) once known.")
    error: str | None = Field(description="Why the run failed or was stopped, when the service knows.")
    artifact_dir: str
    progress: Progress | None
    summary: dict[str, Any] | None = Field(description="Key figures from profile_export.json once it exists.")


class ClientGroupList(BaseModel):
    client_groups: list[ClientGroup]


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description='Where: ["body", "options", "concurrency"], ["path", "id"], ...')
    msg: str


class ErrorBody(BaseModel):
    detail: list[ErrorItem]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    active_client_groups: int
